"""PG2 presets: TOML files in ``generators/pg2/presets/``, loaded and validated here
(the shared sections and the preset loader are ``generators.common.config``'s).

A preset is named either by its file stem (``cpu-small``) or by a path to a
TOML file. ``overrides`` such as ``{"train.stage1_steps": 100}`` change single
values after loading (the CLI's ``--set key=value``), and are validated like
the file itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from augreid import settings
from generators.common import config as common
from generators.common.config import DataConfig, LogConfig, PoseConfig, RuntimeConfig, plain

PACKAGE = "generators.pg2"
__all__ = ["DataConfig", "LogConfig", "ModelConfig", "PG2Config", "PoseConfig", "RuntimeConfig", "TrainConfig"]


@dataclass
class ModelConfig:
    image_size: tuple[int, int] = (128, 64)
    blocks: int = 5
    hidden: int = 128
    z_dim: int = 64
    g2_hidden: int = 128
    activation: Literal["relu", "elu"] = "relu"
    d_hidden: int = 64
    d_layers: int = 4  # DCGAN: stride-2 convs; multiscale: layers of each PatchGAN
    d_norm: Literal["batch", "instance", "none"] = "batch"
    # Stage II's discriminator: "dcgan" (PG2's) or "multiscale" (pix2pixHD's: d_scales
    # PatchGANs on the pair at scales 1, 1/2, 1/4, ...).
    d_type: Literal["dcgan", "multiscale"] = "dcgan"
    d_scales: int = 3
    # G1 starts from the part-wise warp of the condition image into the target pose (generators.common.warping) and sees
    # it beside condition and pose: "residual" adds a colour correction to it, "flow" moves its pixels by a
    # predicted flow (colours come only from the warp); "off" is PG2's G1, drawing the person from scratch.
    warp_base: Literal["off", "residual", "flow"] = "off"


@dataclass
class TrainConfig:
    batch_size: int = 16
    lr_g: float = 2e-5
    lr_d: float = 2e-5
    betas: tuple[float, float] = (0.5, 0.999)
    stage1_steps: int = 22000
    stage2_steps: int = 14000
    joint_steps: int = 0
    l1_weight: float = 10.0
    gan_loss: Literal["bce", "lsgan", "hinge"] = "bce"  # bce (PG2), lsgan or hinge
    fm_weight: float = 0.0  # feature matching over every discriminator layer (pix2pixHD: 10); multiscale only
    lr_halve_every: int = 0
    # G1's ImageNet MobileNetV2 feature term beside pose-mask L1 (generators.common.features); 0 = PG2's L1 only.
    perceptual_weight: float = 0.0
    # G1's pose-mask L1 between coarse_factor-times average-pooled images (losses.coarse_pose_mask_l1): region
    # colours, which pixel L1 under misalignment lets go grey; 0 = off.
    coarse_l1_weight: float = 0.0
    coarse_factor: int = 8
    # Checkpoints hold an exponential moving average of G1's weights over ~1/(1 - ema_decay) steps
    # (generators.common.ema); 0 = the training weights themselves, as PG2.
    ema_decay: float = 0.0
    seed: int = 0


@dataclass
class PG2Config:
    name: str = "custom"
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    @property
    def total_steps(self) -> int:
        return self.train.stage1_steps + self.train.stage2_steps + self.train.joint_steps

    @property
    def has_g2(self) -> bool:
        return self.train.stage2_steps + self.train.joint_steps > 0

    def to_dict(self) -> dict[str, Any]:
        return plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "PG2Config":
        """A saved or hand-written config; keys missing from ``data`` keep their defaults."""
        return settings.load(cls, [settings.Layer(source, data)], what=f"{source}: PG2 settings")

    def problems(self) -> list[str]:
        return _problems(self)


def _problems(config: PG2Config) -> list[str]:
    """Range checks and those across sections (choices are the Literal types)."""
    m, p, t, lg = config.model, config.pose, config.train, config.log
    h, w = m.image_size
    factor = 2 ** (m.blocks - 1)
    problems = []
    if m.blocks < 3:
        problems.append(f"model.blocks: must be >= 3 (G2 has blocks - 2), got {m.blocks}")
    elif h % factor or w % factor:
        problems.append(f"model.image_size: {h}x{w} must be divisible by 2^(blocks-1) = {factor}")
    if m.d_type == "dcgan" and (h % 2**m.d_layers or w % 2**m.d_layers):
        problems.append(f"model.image_size: {h}x{w} must be divisible by 2^d_layers = {2**m.d_layers}")
    for key in ("hidden", "z_dim", "g2_hidden", "d_hidden", "d_layers"):
        if getattr(m, key) < 1:
            problems.append(f"model.{key}: must be positive")
    if not 1 <= m.d_scales <= 4:
        problems.append(f"model.d_scales: must be 1 to 4, got {m.d_scales}")
    if t.fm_weight < 0 or (t.fm_weight > 0 and m.d_type != "multiscale"):
        problems.append("train.fm_weight: must be >= 0, and > 0 only with model.d_type = 'multiscale'")
    if m.warp_base != "off" and p.map_mode != "disk":
        problems.append("model.warp_base: needs pose.map_mode = 'disk' (the warp reads the target joints back from it)")
    if p.radius <= 0 or p.mask_radius <= 0 or p.sigma <= 0:
        problems.append("pose.radius, pose.mask_radius, pose.sigma: must be positive")
    if t.batch_size < 1:
        problems.append(f"train.batch_size: must be >= 1, got {t.batch_size}")
    if min(t.stage1_steps, t.stage2_steps, t.joint_steps) < 0 or config.total_steps < 1:
        problems.append("train.*_steps: must be >= 0 and add up to at least 1")
    if t.perceptual_weight < 0:
        problems.append(f"train.perceptual_weight: must be >= 0, got {t.perceptual_weight}")
    if t.coarse_l1_weight < 0:
        problems.append(f"train.coarse_l1_weight: must be >= 0, got {t.coarse_l1_weight}")
    if not 0 <= t.ema_decay < 1:
        problems.append(f"train.ema_decay: must be in [0, 1), got {t.ema_decay}")
    if t.coarse_factor < 1:
        problems.append(f"train.coarse_factor: must be at least 1, got {t.coarse_factor}")
    if t.lr_g <= 0 or t.lr_d <= 0:
        problems.append("train.lr_g, train.lr_d: must be positive")
    if min(lg.log_every, lg.image_every, lg.checkpoint_every, lg.keep_last) < 1:
        problems.append("log.*: must be >= 1")
    if config.data.max_pairs < 0:
        problems.append(f"data.max_pairs: must be >= 0 (0 = all), got {config.data.max_pairs}")
    return problems


def preset_names() -> list[str]:
    return common.preset_names(PACKAGE)


def load_preset(preset: str | Path, overrides: Mapping[str, Any] | None = None) -> PG2Config:
    """Load a preset by name or path, apply ``{"section.key": value}`` overrides, validate.

    Layers: PG2Config's defaults, the preset file, then the overrides (the CLI's
    ``--config`` and ``--set``); every problem is reported at once.
    """
    return common.load_preset(PG2Config, PACKAGE, preset, overrides, what="PG2 settings")
