"""A trained Deformable GAN for inference: the ``generators.base.Generator`` protocol over its checkpoint.

Target poses arrive as the disk pose maps :meth:`DeformableGenerator.render_pose`
draws; their joints are read back (``common.warping.decode_pose``) to place the
body parts. The condition images' own keypoints come from the caller (synth and
eval-gen pass the dataset's) or, without them, from the warp's pose estimator
(MediaPipe by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from augreid.data.keypoints import NUM_KEYPOINTS
from augreid.data.pose import scale_pose
from augreid.errors import ConfigError
from augreid.io import sha256_file
from generators.common import checkpoint as files
from generators.common.data import render_pose_maps
from generators.common.warping import PartWarper, WarpConfig, decode_pose
from generators.deformable.config import DeformableConfig
from generators.deformable.geometry import batch_geometry
from generators.deformable.model import DeformableNet
from generators.deformable.trainer import FORMAT, GENERATOR_NAME, WHAT


class DeformableGenerator(torch.nn.Module):
    """Condition image + target pose -> the condition person in that pose, all in [-1, 1]."""

    name = GENERATOR_NAME

    def __init__(self, meta: dict[str, Any], checkpoint_path: Path, checkpoint_hash: str) -> None:
        super().__init__()
        self.config = meta
        self.settings = DeformableConfig.from_dict(meta["config"], source=str(checkpoint_path))
        self.checkpoint_path = checkpoint_path
        self.checkpoint_hash = checkpoint_hash
        self.net = DeformableNet(self.settings.model)
        self._warper: PartWarper | None = None

    @property
    def image_size(self) -> tuple[int, int]:
        h, w = self.settings.model.image_size
        return int(h), int(w)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def output_names(self) -> tuple[str, ...]:
        return (GENERATOR_NAME,)

    @property
    def warper(self) -> PartWarper:
        if self._warper is None:
            self._warper = PartWarper(WarpConfig(image_size=self.image_size))
        return self._warper

    def provenance(self) -> dict[str, Any]:
        c = self.config
        return {
            "name": self.name,
            "preset": c.get("preset"),
            "step": c.get("step"),
            "dataset_fingerprint": c.get("dataset_fingerprint"),
            "details": {"weight_average": c.get("weight_average"), "warp_blend": self.settings.model.warp_blend},
        }

    def render_pose(self, pose: np.ndarray, source_size: tuple[int, int] | None = None) -> np.ndarray:
        """Pose maps ``float32 (18, H, W)`` as in training for an ``(18, 2)`` (y, x) pose in this model's image
        coordinates, or in those of an image of ``source_size`` (H, W)."""
        pose = np.asarray(pose)
        if source_size is not None:
            pose = scale_pose(pose, (int(source_size[0]), int(source_size[1])), self.image_size)
        return render_pose_maps(pose, self.image_size, self.settings.pose)

    def _check(self, condition: torch.Tensor, target_maps: torch.Tensor, condition_poses: np.ndarray | None) -> None:
        h, w = self.image_size
        if condition.ndim != 4 or tuple(condition.shape[1:]) != (3, h, w):
            raise ValueError(f"condition must be (B, 3, {h}, {w}), got {tuple(condition.shape)}")
        if tuple(target_maps.shape) != (condition.shape[0], NUM_KEYPOINTS, h, w):
            raise ValueError(
                f"target_maps must be ({condition.shape[0]}, 18, {h}, {w}), got {tuple(target_maps.shape)}"
            )
        if condition_poses is not None and np.shape(condition_poses) != (condition.shape[0], NUM_KEYPOINTS, 2):
            raise ValueError(
                f"condition_poses must be ({condition.shape[0]}, 18, 2), got {tuple(np.shape(condition_poses))}"
            )

    @torch.no_grad()
    def generate_outputs(
        self, condition: torch.Tensor, target_maps: torch.Tensor, condition_poses: np.ndarray | None = None
    ) -> dict[str, torch.Tensor]:
        self._check(condition, target_maps, condition_poses)
        dev = self.device
        condition = condition.to(dev, torch.float32)
        targets = np.stack([decode_pose(maps, self.settings.pose.radius) for maps in target_maps.cpu().numpy()])
        sources = (
            self.warper.estimate_poses(condition) if condition_poses is None else np.asarray(condition_poses, np.int32)
        )
        size, s = self.image_size, self.settings
        condition_maps = torch.from_numpy(np.stack([render_pose_maps(p, size, s.pose) for p in sources]))
        theta, masks = batch_geometry(sources, targets, size, s.parts, dev)
        warped = self.warper.warp(condition, targets, sources) if s.model.uses_warp else None
        out = self.net(condition, condition_maps.to(dev), target_maps.to(dev, torch.float32), theta, masks, warped)
        return {GENERATOR_NAME: out.clamp(-1, 1)}

    @torch.no_grad()
    def generate(
        self, condition: torch.Tensor, target_maps: torch.Tensor, condition_poses: np.ndarray | None = None
    ) -> torch.Tensor:
        return self.generate_outputs(condition, target_maps, condition_poses)[GENERATOR_NAME]

    def close(self) -> None:
        if self._warper is not None:
            self._warper.close()


def load_generator(path: str | Path, device: str = "cpu") -> DeformableGenerator:
    """Load a Deformable GAN checkpoint (a ``.safetensors`` file, its JSON, or a run folder: the latest)."""
    weights = files.resolve_checkpoint(path, WHAT)
    meta = files.read_meta(weights, FORMAT, WHAT)
    if meta.get("format") != FORMAT:
        raise ConfigError(f"{weights}: unsupported checkpoint format {meta.get('format')!r} (expected {FORMAT})")
    generator = DeformableGenerator(meta, weights, sha256_file(weights))
    tensors = files.read_weights(weights, meta, digest=generator.checkpoint_hash)
    try:
        generator.net.load_state_dict(files.module_weights(tensors, "g"), strict=True)
    except RuntimeError as err:
        raise ConfigError(f"{weights}: weights do not match the config beside them ({str(err)[:300]})") from None
    return generator.to(files.usable_device(device)).eval()
