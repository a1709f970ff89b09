"""PG2 checkpoints: what train-gen writes and what ``load_generator`` reads.

A run folder (default ``runs/train-gen/<dataset fingerprint>/<preset>/``) holds::

    checkpoints/step_00001500.safetensors   G1 (and G2) weights, keys g1.* / g2.*
    checkpoints/step_00001500.json          the config: image size, pose rendering,
                                            dataset fingerprint, preset, step, git revision
    checkpoints/step_00001500.state.pt      training state only: D, optimizers, RNG states

``load_generator`` needs only the first two files. The JSON is written last,
so a checkpoint is complete exactly when its JSON exists.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from augreid.errors import ConfigError
from augreid.io import atomic_write_bytes, atomic_write_json, clean_stale_temporaries, sha256_file
from generators import base
from generators.pg2.config import PG2Config, PoseConfig
from augreid.data.pose import scale_pose
from generators.pg2.data import render_pose_mask, render_pose_maps
from generators.pg2.model import G1, G2
from generators.common.warping import PartWarper, WarpConfig, decode_pose

FORMAT = "augreid-pg2/1"


def checkpoint_stem(folder: Path, step: int) -> Path:
    return folder / f"step_{step:08d}"


def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (JSON + safetensors) under ``folder``, sorted by step."""
    return [
        (step, meta.with_suffix(".safetensors"))
        for step, meta in base.list_checkpoint_files(folder)
        if meta.with_suffix(".safetensors").is_file()
    ]


def save_checkpoint(
    folder: Path,
    step: int,
    g1: torch.nn.Module,
    g2: torch.nn.Module | None,
    meta: dict[str, Any],
    state: dict[str, Any] | None = None,
) -> Path:
    """Write weights, training state, then the JSON; returns the safetensors path."""
    stem = checkpoint_stem(folder, step)
    tensors = {f"g1.{k}": v.detach().cpu().contiguous() for k, v in g1.state_dict().items()}
    if g2 is not None:
        tensors.update({f"g2.{k}": v.detach().cpu().contiguous() for k, v in g2.state_dict().items()})
    weights = stem.with_suffix(".safetensors")
    atomic_write_bytes(weights, save(tensors, metadata={"format": FORMAT, "config": json.dumps(meta, sort_keys=True)}))
    if state is not None:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(stem.with_suffix(".state.pt"), buffer.getvalue())
    atomic_write_json(stem.with_suffix(".json"), {**meta, "weights_sha256": sha256_file(weights)})
    return weights


def prune_checkpoints(folder: Path, keep_last: int, keep_steps: AbstractSet[int] = frozenset()) -> None:
    """Delete all but the newest ``keep_last`` checkpoints (and those in ``keep_steps``)."""
    checkpoints = list_checkpoints(folder)
    for step, weights in checkpoints[:-keep_last]:
        if step in keep_steps:
            continue
        stem = weights.with_suffix("")
        stem.with_suffix(".json").unlink(missing_ok=True)  # first: the checkpoint stops counting as complete
        weights.unlink(missing_ok=True)
        stem.with_suffix(".state.pt").unlink(missing_ok=True)


def read_meta(weights: Path) -> dict[str, Any]:
    meta_path = weights.with_suffix(".json")
    if meta_path.is_file():
        try:
            return json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{meta_path}: corrupt checkpoint description ({err})") from None
    try:
        with safe_open(str(weights), framework="pt") as handle:  # a lone .safetensors file carries its config too
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise _corrupt(weights, err) from None
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise ConfigError(f"{weights} is not an augreid PG2 checkpoint (no config beside or inside it)")
    return json.loads(metadata["config"])


def resolve_checkpoint(path: str | Path) -> Path:
    """A ``.safetensors`` file as given, or the latest checkpoint of a run folder."""
    path = Path(path).expanduser()
    if path.suffix == ".json" and path.with_suffix(".safetensors").is_file():
        path = path.with_suffix(".safetensors")  # generators.base names checkpoints by their JSON too
    if path.is_dir():
        checkpoints = list_checkpoints(path)
        if not checkpoints:
            raise ConfigError(f"no PG2 checkpoint (step_*.json + .safetensors) under {path}")
        return checkpoints[-1][1]
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    if path.suffix != ".safetensors":
        raise ConfigError(f"checkpoint {path} is not a .safetensors file or a run folder")
    return path


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


def usable_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``, or a ``ConfigError`` when it names no device this machine has."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device {device!r}: expected cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device is available here; use --device cpu")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    return dev


def _corrupt(weights: Path, err: BaseException) -> ConfigError:
    first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    return ConfigError(
        f"{weights}: truncated or corrupt checkpoint ({first}); train it again or pass another checkpoint"
    )


def read_weights(
    weights: Path, meta: dict[str, Any] | None = None, digest: str | None = None
) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, or a ``ConfigError`` naming the file when it is truncated or corrupt.

    The JSON beside a checkpoint records the weights' SHA-256; a mismatch means
    the file changed after it was written (a bad copy, a disk error).
    """
    expected = (meta or {}).get("weights_sha256")
    if expected:
        digest = digest or sha256_file(weights)
        if digest != expected:
            raise ConfigError(
                f"{weights}: corrupt checkpoint (SHA-256 {digest[:12]}... differs from the "
                f"{expected[:12]}... recorded in {weights.with_suffix('.json').name})"
            )
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise _corrupt(weights, err) from None


def _read_state(path: Path) -> dict[str, Any]:
    try:
        # Our own training state (optimizers, RNG states) from this run folder.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, OSError) as err:
        raise _corrupt(path, err) from None
    if not isinstance(state, dict) or "config" not in state or "rng" not in state:
        raise ConfigError(f"{path}: not a PG2 training state")
    return state


def set_aside(weights: Path) -> Path:
    """Rename a broken checkpoint's JSON so it stops counting as complete; nothing is deleted."""
    meta = weights.with_suffix(".json")
    target = weights.with_suffix(".corrupt.json")
    if meta.is_file():
        meta.replace(target)
    return target


def load_resumable(
    folder: Path, say: Callable[[str], None] = print, *, tidy: bool = True
) -> tuple[int, Path, dict, dict] | None:
    """``(step, weights, tensors, training state)`` of the newest intact checkpoint in ``folder``.

    Temporary files left by a write that was killed are deleted first. A
    checkpoint that fails to load is set aside (its JSON renamed to
    ``*.corrupt.json``) and the next older one is tried, saying so through ``say``.
    ``None`` when the folder holds no checkpoint with a training state. ``tidy=False``
    (other ranks of a multi-GPU run) changes no file and says nothing.
    """
    if not tidy:
        say = _silent
    for path in clean_stale_temporaries(folder) if tidy else []:
        say(f"removed {path.name}, left by an interrupted checkpoint write")
    found = [(s, w) for s, w in list_checkpoints(folder) if w.with_suffix(".state.pt").is_file()]
    broken: list[str] = []
    for step, weights in reversed(found):
        try:
            meta = json.loads(weights.with_suffix(".json").read_text(encoding="utf-8"))
            tensors = read_weights(weights, meta)
            state = _read_state(weights.with_suffix(".state.pt"))
        except (ConfigError, OSError, json.JSONDecodeError) as err:
            if tidy:
                set_aside(weights)
            broken.append(weights.name)
            say(f"warning: {err}; set aside as {weights.with_suffix('.corrupt.json').name}, trying an older checkpoint")
            continue
        if broken:
            say(f"resuming from step {step} ({weights.name}): newer checkpoint(s) {', '.join(broken)} are corrupt")
        return step, weights, tensors, state
    if broken:
        raise ConfigError(
            f"{folder}: every checkpoint is corrupt ({', '.join(broken)}); delete the run folder or choose another --out"
        )
    return None


def _silent(message: str) -> None:
    pass


def find_latest_checkpoint(dataset_fingerprint: str, search_root: str | Path = "runs") -> Path | None:
    """The newest PG2 checkpoint (by file time, then step) written by train-gen for that dataset."""
    return base.find_latest_checkpoint(
        dataset_fingerprint, search_root, accept=lambda meta: meta.get("format") == FORMAT
    )
