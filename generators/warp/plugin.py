"""``warp``: a training-free generator that moves the condition image's body parts into the target pose.

The baseline a learned generator has to beat on pose *and* identity: clothing
is copied pixel for pixel (``generators.common.parts``), the pose is the target's
wherever both poses have a part's joints. The condition image's own keypoints
come from the caller (synth and eval-gen pass the dataset's); a caller without
them gets them estimated by a pose estimator plug-in (``augreid.pose_estimation``;
MediaPipe by default, the estimator that made cuhk03-market's keypoints). A
condition without a torso comes back unchanged (synth's PCKh filter then drops it).

"Training" only checks the dataset and writes the settings as a JSON checkpoint
(``step_0.json``), so that the pipeline's train-gen, eval-gen and synth stages
and their provenance work as for any generator. No image is read.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from augreid import settings
from augreid.data.keypoints import NUM_KEYPOINTS
from augreid.data.pose import pose_maps, scale_pose
from augreid.data.sources import resolve_source
from augreid.errors import ConfigError
from augreid.io import atomic_write_json
from augreid.pose_estimation.base import EstimatorSpec
from generators.base import GeneratorPlugin, list_checkpoint_files
from generators.common.warping import MARKER_RADIUS, PartWarper, WarpConfig, decode_pose

NAME = "warp"


def load_config(preset: str | Path = "default", overrides: Mapping[str, Any] | None = None) -> WarpConfig:
    """``default`` or a TOML file of :class:`WarpConfig` keys, then ``{"section.key": value}`` overrides."""
    layers = []
    if str(preset) != "default":
        path = Path(preset)
        if not path.is_file():
            raise ConfigError(f"unknown warp preset {str(preset)!r} (known: default, or a path to a .toml file)")
        try:
            layers.append(settings.Layer(str(path), {"name": path.stem, **tomllib.loads(path.read_text("utf-8"))}))
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: invalid TOML ({err})") from None
    layers.append(settings.Layer("the overrides", settings.nest(dict(overrides or {}))))
    return settings.load(WarpConfig, layers, what="warp settings")


class WarpGenerator:
    """The ``generators.base.Generator`` protocol over :func:`generators.common.parts.warp_person` (through :class:`generators.common.warping.PartWarper`)."""

    name = NAME

    def __init__(self, config: WarpConfig, meta: dict[str, Any], path: Path) -> None:
        self.config, self.meta = config, meta
        self.checkpoint_path = path
        self.checkpoint_hash = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()
        self.warper = PartWarper(config)

    @property
    def parts_moved(self) -> list[int]:
        """How many parts moved, per generated image (diagnostics)."""
        return self.warper.parts_moved

    @property
    def image_size(self) -> tuple[int, int]:
        return (int(self.config.image_size[0]), int(self.config.image_size[1]))

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("warp",)

    def provenance(self) -> dict[str, Any]:
        return {
            "name": NAME,
            "preset": self.config.name,
            "step": 0,
            "dataset_fingerprint": self.meta.get("dataset_fingerprint"),
            "estimator": self.config.estimator,
        }

    def render_pose(self, pose: np.ndarray, source_size: tuple[int, int] | None = None) -> np.ndarray:
        pose = np.asarray(pose, dtype=np.int32)
        if source_size is not None:
            pose = scale_pose(pose, (int(source_size[0]), int(source_size[1])), self.image_size)
        return pose_maps(pose, self.image_size, radius=MARKER_RADIUS, mode="disk")

    def generate(
        self, condition: torch.Tensor, target_maps: torch.Tensor, condition_poses: np.ndarray | None = None
    ) -> torch.Tensor:
        return self.generate_outputs(condition, target_maps, condition_poses)["warp"]

    def generate_outputs(
        self, condition: torch.Tensor, target_maps: torch.Tensor, condition_poses: np.ndarray | None = None
    ) -> dict[str, torch.Tensor]:
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
        targets = np.stack([decode_pose(maps) for maps in target_maps.detach().cpu().numpy()])
        return {"warp": self.warp(condition, targets, condition_poses)}

    def warp(
        self, condition: torch.Tensor, target_poses: np.ndarray, condition_poses: np.ndarray | None = None
    ) -> torch.Tensor:
        """The condition images re-posed to ``(B, 18, 2)`` (y, x) ``target_poses`` (:class:`PartWarper`)."""
        return self.warper.warp(condition, target_poses, condition_poses)

    def close(self) -> None:
        self.warper.close()

    def to(self, device: str) -> WarpGenerator:  # numpy and OpenCV: nothing to move
        return self

    def eval(self) -> WarpGenerator:
        return self


@dataclass
class WarpRun:
    run_dir: Path
    checkpoint: Path
    step: int = 0
    total_steps: int = 0
    finished: bool = True


def _train(
    preset: str | Path, overrides: Mapping[str, Any] | None, data_root: str | Path | None = None, **options: Any
) -> WarpRun:
    """Check the settings and the dataset; write ``out/step_0.json``. ``options``: train-gen's keywords
    (``out``, ``train_keypoints``; the rest, such as ``resume`` or ``device``, mean nothing here)."""
    config = load_config(preset, overrides)
    EstimatorSpec(config.estimator).check()
    source = resolve_source(data_root, train_keypoints=options.get("train_keypoints"))
    out = Path(options.get("out") or "runs/warp").expanduser()
    meta = {
        "generator": NAME,
        "config": config.to_dict(),
        "dataset_fingerprint": source.load().fingerprint(),
        "dataset_is_demo": bool(source.is_demo),
    }
    path = out / "step_0.json"
    atomic_write_json(path, meta)
    return WarpRun(out, path)


def _load(path: Path, device: str) -> WarpGenerator:
    found = list_checkpoint_files(path) if path.is_dir() else [(0, path)]
    if not found:
        raise ConfigError(f"{path}: no warp checkpoint (step_0.json) in this folder")
    meta_path = found[-1][1]
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{meta_path}: not a warp checkpoint ({err})") from None
    config = settings.load(WarpConfig, [settings.Layer(str(meta_path), meta.get("config", {}))], what=str(meta_path))
    return WarpGenerator(config, meta, meta_path)


PLUGIN = GeneratorPlugin(
    name=NAME,
    load=_load,
    train=_train,
    presets=lambda: ["default"],
    default_preset="default",
    load_config=load_config,
    description="training-free part-wise affine warping of the condition image (after Siarohin et al. 2018)",
)
