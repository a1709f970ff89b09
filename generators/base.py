"""The generator interface: what synth, eval-gen and the pipeline may rely on.

A generator turns a condition image and a target pose into images of the
condition person in that pose. Callers see only :class:`Generator` (a
structural protocol: PG2 and the test double implement it without inheriting
anything) and the registry below, so adding a generator from the literature is
one module with a :class:`GeneratorPlugin` and one :func:`register_generator`
line, without touching synth, eval-gen, the pipeline or the report.

Checkpoints are found and dispatched generically: every generator writes a JSON
file whose ``generator`` key names it (checkpoints written before that key
existed are PG2's), and :func:`load_generator` hands the path to that
generator's loader.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from safetensors import safe_open

from augreid.errors import ConfigError
from augreid.registry import Registry

LEGACY_NAME = "pg2"  # checkpoints without a "generator" key
_STEP_RE = re.compile(r"^step_(\d+)\.json$")


@runtime_checkable
class Generator(Protocol):
    """A loaded generator, in eval mode. Images are ``(B, 3, H, W)`` tensors in [-1, 1]."""

    name: str  # the registry name
    checkpoint_path: Any  # where it was loaded from (a Path, or a label for in-memory doubles)
    checkpoint_hash: str  # sha256 of the weights: synth's provenance and resume key

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` the generator works at; condition images must have it."""

    @property
    def output_names(self) -> tuple[str, ...]:
        """Named outputs for evaluation (e.g. ``("G1", "refined")``); the last one is what :meth:`generate` returns."""

    def provenance(self) -> dict[str, Any]:
        """JSON-able facts recorded with every synthetic set and score: at least ``name``, ``preset``,
        ``step`` and ``dataset_fingerprint`` (``None`` where unknown)."""

    def render_pose(self, pose: np.ndarray, source_size: tuple[int, int] | None = None) -> np.ndarray:
        """The generator's condition input for an ``(18, 2)`` (y, x) target pose, in its own image
        coordinates or in those of an image of ``source_size`` (H, W)."""

    def generate(
        self, condition: torch.Tensor, target_maps: torch.Tensor, condition_poses: np.ndarray | None = None
    ) -> torch.Tensor:
        """The final images for a batch of conditions and rendered target poses.

        ``condition_poses``: the condition images' own ``(B, 18, 2)`` (y, x) keypoints in the generator's
        image coordinates (``MISSING`` where a joint is absent), which every caller in augreid has (the
        dataset's keypoint file); ``None`` from a caller without them. Generators that move the source
        pose (warp; PATN, GFLA, PIDM in the literature) need them, and estimate them when given ``None``;
        PG2 ignores them, as the paper's model does.
        """

    def generate_outputs(
        self, condition: torch.Tensor, target_maps: torch.Tensor, condition_poses: np.ndarray | None = None
    ) -> dict[str, torch.Tensor]:
        """Every named output for the batch, keyed by :attr:`output_names` (arguments as :meth:`generate`)."""


@dataclass(frozen=True)
class GeneratorPlugin:
    """What the registry holds for one generator.

    ``load(path, device)`` reads one of its checkpoints (``path`` as the user
    gave it: a file or a run folder). ``train(preset, overrides, data_root, **options)``
    trains one, returning an object with ``run_dir``, ``checkpoint``, ``step``,
    ``finished`` and ``total_steps``; ``presets()`` lists its preset names;
    ``load_config(preset, overrides)`` resolves and checks its settings without
    training (recipes use it to report every problem before a stage runs).
    """

    name: str
    load: Callable[[Path, str], Generator]
    train: Callable[..., Any] | None = None
    presets: Callable[[], list[str]] | None = None
    default_preset: str | None = None
    description: str = ""
    load_config: Callable[[str | Path, Mapping[str, Any]], Any] | None = None


# name -> plugin, or "module:attribute" imported on first use so that listing
# generators never imports their code (the test double lives in tests/).
_REGISTRY: dict[str, GeneratorPlugin | str] = {
    "pg2": "generators.pg2.plugin:PLUGIN",
    "warp": "generators.warp.plugin:PLUGIN",
    "deformable": "generators.deformable.plugin:PLUGIN",
}
_GENERATORS: Registry[GeneratorPlugin] = Registry("generator", _REGISTRY)


def register_generator(name: str, target: GeneratorPlugin | str) -> None:
    """Make ``name`` usable in ``train-gen --generator``, recipes and checkpoint JSON files."""
    _GENERATORS.register(name, target)


def generator_names() -> list[str]:
    return _GENERATORS.names()


def generator_plugin(name: str) -> GeneratorPlugin:
    """The plug-in registered as ``name`` (its module imported on first use)."""
    return _GENERATORS.get(name)


# ---------------------------------------------------------------- checkpoints


def list_checkpoint_files(folder: str | Path) -> list[tuple[int, Path]]:
    """``step_*.json`` files under ``folder``, sorted by step. A JSON is written last, so each is complete."""
    found = []
    for meta in Path(folder).rglob("step_*.json"):
        match = _STEP_RE.match(meta.name)
        if match:
            found.append((int(match.group(1)), meta))
    return sorted(found)


def _meta_file(path: Path) -> Path | None:
    """The JSON that describes a checkpoint given as a folder, a JSON file or a weights file."""
    if path.is_dir():
        found = list_checkpoint_files(path)
        return found[-1][1] if found else None
    if path.suffix == ".json":
        return path
    beside = path.with_suffix(".json")
    return beside if beside.is_file() else None


def _embedded_name(path: Path) -> str | None:
    """The generator named inside a lone ``.safetensors`` file's metadata, if any."""
    if path.suffix != ".safetensors" or not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        config = json.loads(metadata.get("config", "{}"))
    except Exception:  # noqa: BLE001  (an unreadable file: the generator's own loader reports it properly)
        return None
    return config.get("generator") if isinstance(config, dict) else None


def checkpoint_generator_name(path: str | Path) -> str:
    """Which generator wrote the checkpoint at ``path``; ``"pg2"`` for checkpoints older than the key."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"generator checkpoint {path} does not exist")
    meta = _meta_file(path)
    if meta is None:
        return _embedded_name(path) or LEGACY_NAME
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{meta}: unreadable checkpoint description ({err})") from None
    name = data.get("generator", LEGACY_NAME) if isinstance(data, dict) else None
    if not isinstance(name, str):
        raise ConfigError(f"{meta}: 'generator' must be a generator name, got {name!r}")
    return name


def load_generator(path: str | Path, device: str = "cpu") -> Generator:
    """Load any registered generator's checkpoint (a file or a run folder: its latest checkpoint)."""
    name = checkpoint_generator_name(path)
    return generator_plugin(name).load(Path(path).expanduser(), str(device))


def find_latest_checkpoint(
    dataset_fingerprint: str, search_root: str | Path = "runs", accept: Callable[[dict[str, Any]], bool] | None = None
) -> Path | None:
    """The newest checkpoint (by file time, then step) of any generator trained on that dataset.

    Returns the path the generator's loader takes: the weights file named by the
    JSON's ``weights`` key, else the ``.safetensors`` beside it, else the JSON.
    ``accept(meta)`` narrows the search (e.g. to one generator's checkpoint format).
    """
    root = Path(search_root).expanduser()
    if not root.is_dir():
        return None
    best: tuple[float, int, Path] | None = None
    for step, meta_path in list_checkpoint_files(root):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(meta, dict) or meta.get("dataset_fingerprint") != dataset_fingerprint:
            continue
        if accept is not None and not accept(meta):
            continue
        target = _checkpoint_target(meta_path, meta)
        if target is None:
            continue
        key = (meta_path.stat().st_mtime, step, target)
        if best is None or key[:2] > best[:2]:
            best = key
    return None if best is None else best[2]


def _checkpoint_target(meta_path: Path, meta: dict[str, Any]) -> Path | None:
    weights = meta.get("weights")
    if isinstance(weights, str):
        candidate = meta_path.parent / weights
        return candidate if candidate.is_file() else None
    beside = meta_path.with_suffix(".safetensors")
    if beside.is_file():
        return beside
    # A PG2 JSON without its weights is an incomplete (pruned or crashed) checkpoint.
    return None if meta.get("generator", LEGACY_NAME) == LEGACY_NAME else meta_path


# ---------------------------------------------------------------- images


def to_tensor_image(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) in [-1, 1], the interface's image convention."""
    return (
        torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float() / 127.5 - 1.0
    )  # copy: PIL arrays are read-only


def to_uint8_image(tensor: torch.Tensor) -> np.ndarray:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3) on the CPU, rounding like an image writer."""
    array = ((tensor.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().byte()
    return array.movedim(-3, -1).contiguous().cpu().numpy()


def describe(generator: Generator) -> dict[str, Any]:
    """Provenance plus where it came from, as synth and eval-gen record it (no machine-specific keys added)."""
    return {
        "path": str(getattr(generator, "checkpoint_path", "") or ""),
        "hash": str(generator.checkpoint_hash),
        "outputs": list(generator.output_names),
        **generator.provenance(),
    }
