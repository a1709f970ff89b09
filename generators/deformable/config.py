"""Deformable GAN settings and presets (TOML files in ``generators/deformable/presets/``).

``pose``, ``data``, ``log`` and ``runtime`` are the sections every trained
generator shares (``generators.common.config``); ``model``, ``parts`` and
``train`` are this generator's. A preset is named by its file stem or given as
a path; ``{"section.key": value}`` overrides (``--set``) are validated like the
file, and every problem is reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from augreid import settings
from generators.common import config as common
from generators.common.config import DataConfig, LogConfig, PoseConfig, RuntimeConfig, plain, section_problems
from generators.common.parts import PartWidths

PACKAGE = "generators.deformable"


@dataclass
class ModelConfig:
    image_size: tuple[int, int] = (128, 64)
    hidden: int = 16  # channels of the full-resolution level; doubled per level up to max_channels
    max_channels: int = 128
    levels: int = 5  # encoder levels; the resolution halves from one to the next
    deform_levels: int = 3  # the first this-many levels' appearance skips are deformed (the rest pass unmoved)
    # The pose encoder also sees the training-free part warp of the condition image (generators.common.warping).
    warp_input: bool = True
    # out = m * warp + (1 - m) * decoded with a learned per-pixel m. On by default: the warp already keeps the
    # person's clothing exactly where both poses have a part, so a decoder that starts from it only has to repaint
    # what the warp gets wrong (seams, parts the condition does not show, the background) instead of carrying every
    # colour through its layers, which is what loses identity at CPU widths. Needs warp_input's warp, so it is made
    # whenever either option is on.
    warp_blend: bool = True
    blend_init: float = 2.0  # initial logit of m everywhere: sigmoid(2) = 0.88, i.e. mostly the warp
    d_hidden: int = 32  # PatchGAN, built only with train.gan_weight > 0
    d_layers: int = 3

    @property
    def channels(self) -> list[int]:
        return [min(self.hidden * 2**i, self.max_channels) for i in range(self.levels)]

    @property
    def uses_warp(self) -> bool:
        return self.warp_input or self.warp_blend


@dataclass
class TrainConfig:
    batch_size: int = 8
    lr_g: float = 1e-3
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    steps: int = 6000
    lr_halve_every: int = 0
    # Nearest-neighbour loss (generators.common.features) on these ImageNet MobileNetV2 stage ends (0 = the image,
    # 2 = stride 2, 4 = stride 4), minimum over a nn_size x nn_size neighbourhood of the target's features.
    nn_weight: float = 1.0
    nn_stage_ends: tuple[int, ...] = (2, 4)
    nn_size: int = 3
    l1_weight: float = 0.0  # PG2's pose-mask L1 against the (misaligned) target photo; 0 = off
    # Self-reconstruction: the first self_per_batch conditions of each batch are also rendered in their own pose
    # (target = the condition, perfectly aligned), scored by pose-mask L1 + the nearest-neighbour loss.
    self_weight: float = 1.0
    self_per_batch: int = 2
    gan_weight: float = 0.0  # PatchGAN (LSGAN) on (condition, image); 0 = no discriminator is built
    ema_decay: float = 0.999  # checkpoints hold a moving average of the weights (generators.common.ema); 0 = off
    seed: int = 0


@dataclass
class DeformableConfig:
    name: str = "custom"
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    parts: PartWidths = field(default_factory=PartWidths)
    pose: PoseConfig = field(default_factory=PoseConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    @property
    def total_steps(self) -> int:
        return self.train.steps

    def to_dict(self) -> dict[str, Any]:
        return plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> DeformableConfig:
        """A saved or hand-written config; keys missing from ``data`` keep their defaults."""
        return settings.load(cls, [settings.Layer(source, data)], what=f"{source}: Deformable GAN settings")

    def problems(self) -> list[str]:
        m, t, p = self.model, self.train, self.parts
        h, w = m.image_size
        factor = 2 ** (m.levels - 1)
        out = []
        if m.levels < 2:
            out.append(f"model.levels: must be >= 2, got {m.levels}")
        elif h % factor or w % factor:
            out.append(f"model.image_size: {h}x{w} must be divisible by 2^(levels-1) = {factor}")
        if min(h, w) < 16:
            out.append(f"model.image_size: must be two sizes >= 16, got {list(m.image_size)}")
        if not 0 <= m.deform_levels <= m.levels:
            out.append(f"model.deform_levels: must be in [0, levels = {m.levels}], got {m.deform_levels}")
        for key in ("hidden", "max_channels", "d_hidden", "d_layers"):
            if getattr(m, key) < 1:
                out.append(f"model.{key}: must be positive")
        if m.uses_warp and self.pose.map_mode != "disk":
            out.append("model.warp_input / warp_blend: need pose.map_mode = 'disk' (the warp reads the joints back)")
        for key in ("arm", "leg", "head"):
            if not 0.0 < getattr(p, key) <= 2.0:
                out.append(f"parts.{key}: must be in (0, 2] (a fraction of the torso length), got {getattr(p, key)}")
        if p.torso_margin < 0 or p.extremity < 0:
            out.append("parts.torso_margin, parts.extremity: must be >= 0")
        if t.batch_size < 1:
            out.append(f"train.batch_size: must be >= 1, got {t.batch_size}")
        if t.steps < 1:
            out.append(f"train.steps: must be >= 1, got {t.steps}")
        if t.lr_g <= 0 or t.lr_d <= 0:
            out.append("train.lr_g, train.lr_d: must be positive")
        for key in ("nn_weight", "l1_weight", "self_weight", "gan_weight"):
            if getattr(t, key) < 0:
                out.append(f"train.{key}: must be >= 0, got {getattr(t, key)}")
        if t.nn_weight + t.l1_weight == 0:
            out.append("train.nn_weight, train.l1_weight: at least one must be > 0 (nothing would fit the target)")
        if t.nn_size < 1 or t.nn_size % 2 == 0:
            out.append(f"train.nn_size: must be an odd size >= 1, got {t.nn_size}")
        ends = list(t.nn_stage_ends)
        if not ends or ends != sorted(set(ends)) or ends[0] < 0 or ends[-1] > 18:
            out.append(f"train.nn_stage_ends: must be increasing MobileNetV2 block ends in [0, 18], got {ends}")
        if t.self_per_batch < 0:
            out.append(f"train.self_per_batch: must be >= 0, got {t.self_per_batch}")
        if not 0 <= t.ema_decay < 1:
            out.append(f"train.ema_decay: must be in [0, 1), got {t.ema_decay}")
        return out + section_problems(self.pose, self.data, self.log)


def preset_names() -> list[str]:
    return common.preset_names(PACKAGE)


def load_preset(preset: str | Path, overrides: Mapping[str, Any] | None = None) -> DeformableConfig:
    """Load a preset by name or path, apply ``{"section.key": value}`` overrides, validate."""
    return common.load_preset(DeformableConfig, PACKAGE, preset, overrides, what="Deformable GAN settings")
