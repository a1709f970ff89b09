"""Checkpoint files of a trained generator: what train-gen writes, resumes from and a loader reads.

A checkpoint folder holds, per saved step::

    step_00001500.safetensors   the inference weights, keys "<module>.<parameter>" (e.g. g1.*, g.*)
    step_00001500.json          the description: generator name, format, config, dataset fingerprint, step,
                                and the weights' SHA-256
    step_00001500.state.pt      training state only: optimizers, RNG states, training weights

A loader needs only the first two files. The JSON is written last, so a
checkpoint is complete exactly when its JSON exists; its ``weights_sha256``
catches a weights file that changed afterwards. ``format`` (e.g.
``"augreid-pg2/1"``) is also stored inside the safetensors metadata, with the
description, so a lone ``.safetensors`` file still loads.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from augreid.errors import ConfigError
from augreid.io import atomic_write_bytes, atomic_write_json, clean_stale_temporaries, sha256_file
from generators import base


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
    modules: Mapping[str, torch.nn.Module | None],
    meta: dict[str, Any],
    state: dict[str, Any] | None = None,
    *,
    fmt: str,
) -> Path:
    """Write the weights of ``modules`` (``prefix -> module``; ``None`` skipped), the training state, then
    the JSON; returns the safetensors path."""
    stem = checkpoint_stem(folder, step)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in modules.items():
        if module is not None:
            tensors.update({f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
    weights = stem.with_suffix(".safetensors")
    atomic_write_bytes(weights, save(tensors, metadata={"format": fmt, "config": json.dumps(meta, sort_keys=True)}))
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


def read_meta(weights: Path, fmt: str, what: str) -> dict[str, Any]:
    """The description of a checkpoint: the JSON beside ``weights``, else the copy inside it.

    ``what`` names the generator in the error for a file that is not one of its checkpoints.
    """
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
        raise corrupt(weights, err) from None
    if metadata.get("format") != fmt or "config" not in metadata:
        raise ConfigError(f"{weights} is not an augreid {what} checkpoint (no config beside or inside it)")
    return json.loads(metadata["config"])


def resolve_checkpoint(path: str | Path, what: str) -> Path:
    """A ``.safetensors`` file as given (or named by its JSON), or the latest checkpoint of a run folder."""
    path = Path(path).expanduser()
    if path.suffix == ".json" and path.with_suffix(".safetensors").is_file():
        path = path.with_suffix(".safetensors")  # generators.base names checkpoints by their JSON too
    if path.is_dir():
        checkpoints = list_checkpoints(path)
        if not checkpoints:
            raise ConfigError(f"no {what} checkpoint (step_*.json + .safetensors) under {path}")
        return checkpoints[-1][1]
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    if path.suffix != ".safetensors":
        raise ConfigError(f"checkpoint {path} is not a .safetensors file or a run folder")
    return path


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


def corrupt(weights: Path, err: BaseException) -> ConfigError:
    """The one-line error for a checkpoint file that cannot be read."""
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
        raise corrupt(weights, err) from None


def module_weights(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The state dict of the module saved under ``prefix`` (``"g1"``: the ``g1.*`` tensors, prefix removed)."""
    head = f"{prefix}."
    return {k[len(head) :]: v for k, v in tensors.items() if k.startswith(head)}


def _read_state(path: Path, what: str) -> dict[str, Any]:
    try:
        # Our own training state (optimizers, RNG states) from this run folder.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, OSError) as err:
        raise corrupt(path, err) from None
    if not isinstance(state, dict) or "config" not in state or "rng" not in state:
        raise ConfigError(f"{path}: not a {what} training state")
    return state


def set_aside(weights: Path) -> Path:
    """Rename a broken checkpoint's JSON so it stops counting as complete; nothing is deleted."""
    meta = weights.with_suffix(".json")
    target = weights.with_suffix(".corrupt.json")
    if meta.is_file():
        meta.replace(target)
    return target


def load_resumable(
    folder: Path, say: Callable[[str], None] = print, *, tidy: bool = True, what: str = "generator"
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
            state = _read_state(weights.with_suffix(".state.pt"), what)
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
