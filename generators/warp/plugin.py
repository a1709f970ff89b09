"""``warp``: a training-free generator that moves the condition image's body parts into the target pose.

The baseline a learned generator has to beat on pose *and* identity: clothing
is copied pixel for pixel (``generators.warp.parts``), the pose is the target's
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

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
import torch

from augreid import settings
from augreid.data.keypoints import MISSING, NUM_KEYPOINTS
from augreid.data.pose import pose_maps, scale_pose
from augreid.data.sources import resolve_source
from augreid.errors import ConfigError
from augreid.io import atomic_write_json
from augreid.pose_estimation.base import EstimatorSpec, PoseEstimator
from generators.base import GeneratorPlugin, list_checkpoint_files, to_tensor_image, to_uint8_image
from generators.warp.parts import PartWidths, warp_person

NAME = "warp"
MARKER_RADIUS = 2.0  # target joints are rendered as small disks; generate() reads back their centres


@dataclass
class WarpConfig:
    name: str = "default"
    image_size: tuple[int, int] = (128, 64)
    estimator: str = "mediapipe"  # finds the condition image's keypoints
    background: Literal["inpaint", "condition"] = "inpaint"  # what shows where the person used to stand
    widths: PartWidths = field(default_factory=PartWidths)

    def problems(self) -> list[str]:
        out = []
        if min(self.image_size) < 32:
            out.append(f"image_size: must be two sizes >= 32, got {list(self.image_size)}")
        w = self.widths
        for key in ("arm", "leg", "head"):
            if not 0.0 < getattr(w, key) <= 2.0:
                out.append(f"widths.{key}: must be in (0, 2] (a fraction of the torso length), got {getattr(w, key)}")
        for key in ("torso_margin", "feather", "extremity"):
            if getattr(w, key) < 0:
                out.append(f"widths.{key}: must be >= 0, got {getattr(w, key)}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def warp_image(self, image: np.ndarray, source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, int]:
        """uint8 ``image`` whose person stands in ``source`` re-posed to ``target`` with these settings, and how many
        parts moved: what :class:`WarpGenerator` and PG2's ``model.warp_base`` training both call."""
        return warp_person(
            np.ascontiguousarray(image),
            np.asarray(source, np.int32),
            np.asarray(target, np.int32),
            self.widths,
            inpaint=self.background == "inpaint",
        )


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
    """The ``generators.base.Generator`` protocol over :func:`generators.warp.parts.warp_person`."""

    name = NAME

    def __init__(self, config: WarpConfig, meta: dict[str, Any], path: Path) -> None:
        self.config, self.meta = config, meta
        self.checkpoint_path = path
        self.checkpoint_hash = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()
        self.parts_moved: list[int] = []  # per generated image, for diagnostics
        self._estimator: PoseEstimator | None = None
        self._poses: dict[bytes, np.ndarray] = {}  # condition image digest -> its keypoints

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
        """The condition images re-posed to ``(B, 18, 2)`` (y, x) ``target_poses``, in the images' coordinates.

        Also what PG2's ``model.warp_base`` starts from; ``condition_poses`` as in :meth:`generate`."""
        images = to_uint8_image(condition)
        out = []
        for i, (image, target) in enumerate(zip(images, np.asarray(target_poses))):
            source = self._estimated_pose(image) if condition_poses is None else np.asarray(condition_poses[i])
            warped, moved = self.config.warp_image(image, source, target)
            self.parts_moved.append(moved)
            out.append(to_tensor_image(warped))
        return torch.stack(out).to(condition.device)

    def _estimated_pose(self, image: np.ndarray) -> np.ndarray:
        key = hashlib.sha1(image.tobytes()).digest()
        if key not in self._poses:
            if self._estimator is None:
                self._estimator = EstimatorSpec(self.config.estimator).build()
            self._poses[key] = self._estimator.estimate(image).pose
        return self._poses[key]

    def close(self) -> None:
        if self._estimator is not None:
            self._estimator.close()
            self._estimator = None

    def to(self, device: str) -> WarpGenerator:  # numpy and OpenCV: nothing to move
        return self

    def eval(self) -> WarpGenerator:
        return self


def decode_pose(maps: np.ndarray, radius: float = MARKER_RADIUS) -> np.ndarray:
    """The ``(18, 2)`` pose back from disk pose maps of ``radius`` (:meth:`WarpGenerator.render_pose`'s, or PG2's
    disks): their centres; empty maps = missing."""
    pose = np.full((NUM_KEYPOINTS, 2), MISSING, np.int32)
    for j, channel in enumerate(np.asarray(maps)):
        ys, xs = np.nonzero(channel > 0.5)
        if len(ys):
            pose[j] = (_disk_centre(ys, channel.shape[0], radius), _disk_centre(xs, channel.shape[1], radius))
    return pose


def _disk_centre(coords: np.ndarray, size: int, radius: float) -> int:
    """The centre of a disk of ``radius`` along one axis from the pixels it covers, read from the edge the
    image did not cut: a mean would pull a foot at the bottom row (a cut disk) towards the middle."""
    low, high, r = int(coords.min()), int(coords.max()), int(radius)
    if low > 0:
        return low + r
    if high < size - 1:
        return high - r
    return (low + high) // 2  # cut on both sides: the image is narrower than the disk


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
