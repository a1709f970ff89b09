"""PG2 checkpoints: what train-gen writes and what ``load_generator`` reads.

A run folder (default ``runs/train-gen/<dataset fingerprint>/<preset>/``) holds::

    checkpoints/step_00001500.safetensors   G1 (and G2) weights, keys g1.* / g2.*
    checkpoints/step_00001500.json          the config: image size, pose rendering,
                                            dataset fingerprint, preset, step, git revision
    checkpoints/step_00001500.state.pt      training state only: D, optimizers, RNG states

``load_generator`` needs only the first two files. The JSON is written last,
so a checkpoint is complete exactly when its JSON exists (the file layout and
the resumable loading are ``generators.common.checkpoint``'s).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from augreid.data.pose import scale_pose
from augreid.errors import ConfigError
from augreid.io import sha256_file
from generators import base
from generators.common import checkpoint as files
from generators.common.checkpoint import list_checkpoints, load_resumable, prune_checkpoints, usable_device
from generators.common.config import PoseConfig
from generators.common.data import render_pose_mask, render_pose_maps
from generators.common.warping import PartWarper, WarpConfig, decode_pose
from generators.pg2.config import PG2Config
from generators.pg2.model import G1, G2

FORMAT = "augreid-pg2/1"
WHAT = "PG2"


def save_checkpoint(
    folder: Path,
    step: int,
    g1: torch.nn.Module,
    g2: torch.nn.Module | None,
    meta: dict[str, Any],
    state: dict[str, Any] | None = None,
) -> Path:
    """Write weights (keys ``g1.*``, ``g2.*``), training state, then the JSON; returns the safetensors path."""
    return files.save_checkpoint(folder, step, {"g1": g1, "g2": g2}, meta, state, fmt=FORMAT)


def read_meta(weights: Path) -> dict[str, Any]:
    """The description of a PG2 checkpoint (the JSON beside it, or the copy inside a lone file)."""
    return files.read_meta(weights, FORMAT, WHAT)


def resolve_checkpoint(path: str | Path) -> Path:
    """A ``.safetensors`` file as given, or the latest checkpoint of a run folder."""
    return files.resolve_checkpoint(path, WHAT)


read_weights = files.read_weights

__all__ = [
    "FORMAT",
    "PG2Generator",
    "find_latest_checkpoint",
    "list_checkpoints",
    "load_generator",
    "load_resumable",
    "prune_checkpoints",
    "read_meta",
    "read_weights",
    "resolve_checkpoint",
    "save_checkpoint",
    "usable_device",
]


class PG2Generator(torch.nn.Module):
    """A trained PG2 for inference: condition image + target pose -> image, all in [-1, 1]."""

    def __init__(self, config: dict[str, Any], checkpoint_path: Path, checkpoint_hash: str) -> None:
        super().__init__()
        full = PG2Config.from_dict(config["config"], source=str(checkpoint_path))
        self.config = config
        self.model_config = full.model
        self.pose_config: PoseConfig = full.pose
        self.checkpoint_path = checkpoint_path
        self.checkpoint_hash = checkpoint_hash
        self.g1 = G1(full.model)
        self.g2 = G2(full.model) if config["has_g2"] else None
        self._warper: PartWarper | None = None  # model.warp_base only

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.config["image_size"])

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _pose(self, pose: np.ndarray, source_size: tuple[int, int] | None) -> np.ndarray:
        pose = np.asarray(pose)
        if source_size is None:
            return pose
        return scale_pose(pose, (int(source_size[0]), int(source_size[1])), self.image_size)

    def render_pose(self, pose: np.ndarray, source_size: tuple[int, int] | None = None) -> np.ndarray:
        """Pose maps ``float32 (18, H, W)`` exactly as in training, for an ``(18, 2)`` (y, x) pose.

        The pose is in this model's image coordinates, or in those of an image of
        ``source_size`` (H, W), which are then scaled as training scaled them.
        """
        return render_pose_maps(self._pose(pose, source_size), self.image_size, self.pose_config)

    def render_mask(self, pose: np.ndarray, source_size: tuple[int, int] | None = None) -> np.ndarray:
        """The pose mask ``float32 (H, W)`` used by the masked losses and scores."""
        return render_pose_mask(self._pose(pose, source_size), self.image_size, self.pose_config)

    def _inputs(self, condition: torch.Tensor, target_maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = self.image_size
        if condition.ndim != 4 or condition.shape[1:] != (3, h, w):
            raise ValueError(f"condition must be (B, 3, {h}, {w}), got {tuple(condition.shape)}")
        if target_maps.shape != (condition.shape[0], 18, h, w):
            raise ValueError(
                f"target_maps must be ({condition.shape[0]}, 18, {h}, {w}), got {tuple(target_maps.shape)}"
            )
        return condition.to(self.device, torch.float32), target_maps.to(self.device, torch.float32)

    # ---- the generators.base.Generator interface

    name = "pg2"

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("G1",) if self.g2 is None else ("G1", "refined")

    def provenance(self) -> dict[str, Any]:
        """Generic keys first; PG2's own (stage II kind, pose rendering) are for people reading the JSON."""
        c = self.config
        stage2 = (c.get("config") or {}).get("model", {}).get("d_type", "dcgan") if self.g2 is not None else None
        return {
            "name": self.name,
            "preset": c.get("preset"),
            "step": c.get("step"),
            "dataset_fingerprint": c.get("dataset_fingerprint"),
            "details": {
                "has_g2": self.g2 is not None,
                "stage2": stage2,
                "pose_map_mode": c.get("pose_map_mode"),
                "pose_radius": c.get("pose_radius"),
            },
        }

    @torch.no_grad()
    def generate_outputs(
        self, condition: torch.Tensor, target_maps: torch.Tensor, condition_poses: np.ndarray | None = None
    ) -> dict[str, torch.Tensor]:
        coarse, refined = self.generate_stages(condition, target_maps, condition_poses)
        return {"G1": coarse} if refined is None else {"G1": coarse, "refined": refined}

    @torch.no_grad()
    def generate_stages(
        self, condition: torch.Tensor, target_maps: torch.Tensor, condition_poses: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(G1 output, refined output or None), clamped to [-1, 1]. ``condition_poses`` feed the warp of
        ``model.warp_base`` (estimated by MediaPipe when ``None``, as the warp generator does); else unused."""
        condition, target_maps = self._inputs(condition, target_maps)
        coarse = self.g1(condition, target_maps, self._warped(condition, target_maps, condition_poses))
        refined = None if self.g2 is None else (coarse + self.g2(coarse, condition)).clamp(-1, 1)
        return coarse.clamp(-1, 1), refined

    @torch.no_grad()
    def generate(
        self, condition: torch.Tensor, target_maps: torch.Tensor, condition_poses: np.ndarray | None = None
    ) -> torch.Tensor:
        """The refined image when G2 exists, else G1's; ``(B, 3, H, W)`` in [-1, 1] on the model's device."""
        coarse, refined = self.generate_stages(condition, target_maps, condition_poses)
        return coarse if refined is None else refined

    def _warped(
        self, condition: torch.Tensor, target_maps: torch.Tensor, condition_poses: np.ndarray | None
    ) -> torch.Tensor | None:
        if self.model_config.warp_base == "off":
            return None
        if self._warper is None:
            self._warper = PartWarper(WarpConfig(image_size=self.image_size))
        radius = self.pose_config.radius
        targets = np.stack([decode_pose(maps, radius) for maps in target_maps.detach().cpu().numpy()])
        return self._warper.warp(condition, targets, condition_poses)


def load_generator(path: str | Path, device: str = "cpu") -> PG2Generator:
    """Load a PG2 checkpoint (a ``.safetensors`` file or a run folder: its latest checkpoint)."""
    weights = resolve_checkpoint(path)
    meta = read_meta(weights)
    if meta.get("format") != FORMAT:
        raise ConfigError(f"{weights}: unsupported checkpoint format {meta.get('format')!r} (expected {FORMAT})")
    generator = PG2Generator(meta, weights, sha256_file(weights))
    tensors = read_weights(weights, meta, digest=generator.checkpoint_hash)
    for prefix, module in (("g1.", generator.g1), ("g2.", generator.g2)):
        if module is None:
            continue
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ConfigError(f"{weights}: weights do not match the config beside them ({str(err)[:300]})") from None
    return generator.to(usable_device(device)).eval()


def find_latest_checkpoint(dataset_fingerprint: str, search_root: str | Path = "runs") -> Path | None:
    """The newest PG2 checkpoint (by file time, then step) written by train-gen for that dataset."""
    return base.find_latest_checkpoint(
        dataset_fingerprint, search_root, accept=lambda meta: meta.get("format") == FORMAT
    )
