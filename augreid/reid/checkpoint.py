"""Re-ID checkpoints that load under ``torch.load(..., weights_only=True)``.

torchreid's own ``Engine.save_model`` pickles whatever it is given (its
``rank1`` is a numpy scalar from the evaluator), and PyTorch >= 2.6 refuses
such files by default. Here a checkpoint is a dict of tensors and plain
Python values only, and the run's description (model name, class count, input
size, normalisation, data provenance) travels with the weights, so a model can
be rebuilt from the file alone, without ever downloading anything.

Layout of ``checkpoint.pth``::

    {"format": "augreid-reid-checkpoint", "version": 1, "epoch": int,
     "state_dict": {name: Tensor}, "info": {...},
     "optimizer": {...} (optional), "scheduler": {...} (optional)}
"""

from __future__ import annotations

import io
import json
import pickle
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augreid.errors import AugreidError, ConfigError
from augreid.io import atomic_write_bytes, atomic_write_json
from augreid.reid.methods import get_method, method_of
from augreid.reid.models import check_model_name, import_torchreid_models, model_names

__all__ = ["build_reid_model", "check_model_name", "import_torchreid_models", "load_reid_model", "model_names"]

CHECKPOINT_NAME = "checkpoint.pth"
RUN_JSON = "run.json"
FORMAT = "augreid-reid-checkpoint"
VERSION = 1

# What ``load_reid_model`` promises to return, with defaults for older files.
INFO_DEFAULTS: dict[str, Any] = {
    "model_name": None,
    "num_classes": None,
    "loss": "softmax",
    "method": None,
    "method_options": {},
    "height": 256,
    "width": 128,
    "norm_mean": [0.485, 0.456, 0.406],
    "norm_std": [0.229, 0.224, 0.225],
    "dataset_fingerprint": None,
    "seed": None,
    "label_scheme": "same-id",
    "synthetic": None,
}


def plain(obj: Any, where: str = "value") -> Any:
    """Convert ``obj`` into tensors and plain Python values that ``weights_only`` accepts.

    Counters become dicts (MultiStepLR milestones; accepted by today's torch but
    not by every version), numpy scalars/arrays become
    Python numbers/lists, paths become strings. Anything else is a bug in the
    caller and raises ``TypeError`` naming where it was found.
    """
    # np.float64 subclasses float, so numpy goes first.
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, torch.Tensor)):
        return obj
    # Subclasses (torch.__version__ is a TorchVersion str, IntEnum...) are refused by weights_only.
    for kind in (int, float, str):
        if isinstance(obj, kind):
            return kind(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Mapping):
        return {k if isinstance(k, (int, str)) else str(k): plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(plain(v, where) for v in obj)
    if isinstance(obj, (list, set, frozenset)):
        items = sorted(obj) if isinstance(obj, (set, frozenset)) else obj
        return [plain(v, where) for v in items]
    raise TypeError(f"{where}: cannot store {type(obj).__name__} in a weights_only checkpoint")


def json_safe(obj: Any) -> Any:
    """``plain`` without tensors, for run.json."""
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def save_reid_checkpoint(
    run_dir: str | Path, model, info: dict, epoch: int, optimizer=None, scheduler=None, extra: dict | None = None
) -> Path:
    """Write ``run_dir/checkpoint.pth`` atomically and merge ``info`` into ``run_dir/run.json``.

    ``info`` should hold at least ``model_name`` and ``num_classes``; the other
    keys of ``INFO_DEFAULTS`` are filled in when missing. ``epoch`` counts the
    finished epochs. ``extra`` (e.g. random-number-generator states for an exact
    resume) is stored in the checkpoint only.
    """
    run_dir = Path(run_dir)
    full_info = {**INFO_DEFAULTS, **plain(dict(info), "info")}
    for key in ("model_name", "num_classes"):
        if full_info.get(key) is None:
            raise ConfigError(f"checkpoint info needs {key!r}")
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": int(epoch),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "info": full_info,
    }
    if optimizer is not None:
        payload["optimizer"] = plain(optimizer.state_dict(), "optimizer")
    if scheduler is not None:
        payload["scheduler"] = plain(scheduler.state_dict(), "scheduler")
    for key, value in (extra or {}).items():
        payload.setdefault(key, plain(value, key))
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = atomic_write_bytes(run_dir / CHECKPOINT_NAME, buffer.getvalue())
    update_run_json(run_dir, {**full_info, "epoch": int(epoch), "checkpoint": CHECKPOINT_NAME})
    return path


def update_run_json(run_dir: str | Path, fields: dict) -> Path:
    """Merge ``fields`` into ``run_dir/run.json`` (created when absent)."""
    path = Path(run_dir) / RUN_JSON
    current = read_run_json(path) if path.is_file() else {}
    current.update(json_safe(plain(fields, "run.json")))
    return atomic_write_json(path, current)


def read_run_json(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise AugreidError(f"{path}: run description not found") from None
    except json.JSONDecodeError as err:
        raise AugreidError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise AugreidError(f"{path}: expected a JSON object")
    return data


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A run folder (holding ``checkpoint.pth``) or a checkpoint file -> the checkpoint file."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise AugreidError(f"{path}: re-ID checkpoint not found (pass a run folder or a checkpoint .pth file)")
    return path


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint file with ``weights_only=True``; raise ``AugreidError`` on anything odd."""
    path = resolve_checkpoint_path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    # A text file renamed .pth makes the legacy unpickler fail with KeyError / IndexError /
    # OSError (EINVAL) and the like; all of them mean "not a checkpoint", never a bug here.
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
        UnicodeDecodeError,
        OSError,
    ) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AugreidError(f"{path}: not a loadable re-ID checkpoint ({type(err).__name__}: {first[:200]})") from None
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise AugreidError(f"{path}: not an augreid re-ID checkpoint (no state_dict)")
    return payload


def build_reid_model(name: str, num_classes: int, method: str = "softmax", options: dict | None = None):
    """The network ``method`` trains, with random weights (in eval mode it gives retrieval features)."""
    return get_method(method).build_model(name, int(num_classes), dict(options or {}))


def classifier_rows(state_dict: dict) -> dict[str, int]:
    """Output sizes of the classifier layers in a state dict (``classifier.weight`` and friends)."""
    return {
        key: int(value.shape[0])
        for key, value in state_dict.items()
        if "classifier" in key and key.endswith("weight") and getattr(value, "ndim", 0) >= 2
    }


def checkpoint_info(ckpt_path: Path, payload: dict | None = None) -> dict[str, Any]:
    """The run description of a checkpoint file: ``INFO_DEFAULTS``, the stored info,
    ``run.json`` beside it (model identity excepted), ``epoch`` and ``checkpoint``."""
    payload = read_checkpoint(ckpt_path) if payload is None else payload
    info = {**INFO_DEFAULTS, **dict(payload.get("info") or {})}
    run_json = ckpt_path.parent / RUN_JSON
    if run_json.is_file():
        info.update({k: v for k, v in read_run_json(run_json).items() if k not in ("model_name", "num_classes")})
    info["epoch"] = payload.get("epoch")
    info["checkpoint"] = str(ckpt_path)
    return info


def load_reid_model(path: str | Path, device: str = "cpu"):
    """Rebuild a trained re-ID model from a run folder or checkpoint file.

    Returns ``(model, info)``: the model in eval mode on ``device`` and the run
    description (``INFO_DEFAULTS`` keys, overlaid by ``run.json`` when the run
    folder has one, plus ``epoch`` and ``checkpoint``).
    """
    ckpt_path = resolve_checkpoint_path(path)
    payload = read_checkpoint(ckpt_path)
    info = checkpoint_info(ckpt_path, payload)
    name, num_classes = info.get("model_name"), info.get("num_classes")
    if not name or not isinstance(num_classes, int) or num_classes < 1:
        raise AugreidError(f"{ckpt_path}: checkpoint does not record model_name/num_classes")
    state_dict = payload["state_dict"]
    wrong = {k: n for k, n in classifier_rows(state_dict).items() if n != num_classes}
    if wrong:
        key, rows = next(iter(wrong.items()))
        raise AugreidError(
            f"{ckpt_path}: classifier {key} has {rows} outputs but the checkpoint says num_classes={num_classes}"
        )
    try:
        info["method"] = method_of(info)
        model = build_reid_model(name, num_classes, info["method"], info.get("method_options"))
    except ConfigError as err:
        raise AugreidError(f"{ckpt_path}: {err}") from None
    # torchreid wraps models in DataParallel on multi-GPU machines; accept its prefix.
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise AugreidError(f"{ckpt_path}: weights do not fit model {name!r} ({first})") from None
    model.to(device)
    model.eval()
    return model, info


def restore_training_state(payload: dict, optimizer=None, scheduler=None) -> int:
    """Load optimizer/scheduler state saved by ``save_reid_checkpoint``.

    Returns the number of epochs already done, which is the 0-based index of
    the next epoch to train (``epoch`` is saved as a count of finished epochs).
    """
    if optimizer is not None and payload.get("optimizer") is not None:
        optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None and payload.get("scheduler") is not None:
        state = dict(payload["scheduler"])
        if isinstance(getattr(scheduler, "milestones", None), Counter) and isinstance(state.get("milestones"), dict):
            state["milestones"] = Counter(state["milestones"])
        scheduler.load_state_dict(state)
    return int(payload.get("epoch", 0))
