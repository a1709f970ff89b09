"""``augreid export RUN --format onnx``: the trained re-ID network as an ONNX model, checked with onnxruntime.

The graph is the network in eval mode, the call ``augreid eval`` makes per batch:

* input ``images``: float32 ``(batch, 3, H, W)``, RGB scaled to [0, 1], resized to the
  run's ``H x W`` and normalised with its mean and std;
* output ``features``: float32 ``(batch, D)``, the retrieval feature (for ``bot`` the
  BNNeck'd one), before any flip averaging or L2 normalisation.

The batch dimension is dynamic. The model's ``metadata_props`` record ``height``,
``width``, ``norm_mean``, ``norm_std`` (JSON), ``model_name``, ``method``,
``checkpoint_sha256`` and ``augreid_version``, so the file says how to feed it.

torch's TorchScript-based exporter (``dynamo=False``) writes it: the pinned torch
has it, it needs nothing beyond the ``[onnx]`` extra, and on a small OSNet it took a
seventh of the time of the ``torch.export``-based one (which also needs onnxscript).
Before anything is written, onnxruntime runs a fixed batch (:data:`CHECK_BATCH`
images drawn with seed 0) and that batch's first image alone, and the largest
absolute difference from torch's features must be within :data:`TOLERANCE`.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augreid import __version__
from augreid.errors import AugreidError, ConfigError
from augreid.io import atomic_write_bytes, sha256_file
from augreid.reid.checkpoint import load_reid_model, resolve_checkpoint_path

FORMATS = ("onnx",)
TOLERANCE = 1e-4  # largest |onnxruntime - torch| accepted, per feature value
OPSET = 17
CHECK_BATCH = (
    4  # images in the fixed check batch (the export traces a batch of 2, so the check also tests the dynamic axis)
)
INPUT, OUTPUT = "images", "features"
INSTALL_HINT = "pip install -e '.[onnx]'"


@dataclass
class ExportResult:
    """The written model and what the onnxruntime check found."""

    path: Path
    max_abs_diff: float
    checked_batches: tuple[int, ...]
    height: int
    width: int
    feature_dim: int
    opset: int
    metadata: dict[str, str]

    def format(self) -> str:
        """What ``augreid export`` prints."""
        return "\n".join(
            [
                f"written: {self.path} (ONNX opset {self.opset})",
                f"input {INPUT}: float32 (batch, 3, {self.height}, {self.width}), RGB in [0, 1] normalised with "
                f"mean {self.metadata['norm_mean']} and std {self.metadata['norm_std']}",
                f"output {OUTPUT}: float32 (batch, {self.feature_dim}), the retrieval feature (no flip, not normalised)",
                f"onnxruntime vs torch on a fixed batch of {' and of '.join(map(str, self.checked_batches))}: "
                f"max |difference| {self.max_abs_diff:.2e} (tolerance {TOLERANCE:.0e})",
            ]
        )


def require_onnx() -> tuple[Any, Any]:
    """The ``onnx`` and ``onnxruntime`` modules, or a one-line ``ConfigError`` naming the extra."""
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise ConfigError(f"ONNX export needs the onnx extra ({err}): {INSTALL_HINT}") from None
    return onnx, onnxruntime


def check_batch(height: int, width: int, size: int = CHECK_BATCH) -> torch.Tensor:
    """The fixed check batch: ``size`` standard-normal images (already "normalised"), seed 0."""
    return torch.randn(size, 3, int(height), int(width), generator=torch.Generator().manual_seed(0))


def onnx_features(model_bytes: bytes, images: np.ndarray) -> np.ndarray:
    """Run the ONNX model on ``images`` with onnxruntime's CPU provider."""
    _, ort = require_onnx()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT], {INPUT: np.ascontiguousarray(images, dtype=np.float32)})[0]


def _trace(model: torch.nn.Module, example: torch.Tensor, opset: int) -> bytes:
    # The exporter warns that it is the older of torch's two and prints graph notes; neither is the user's concern.
    with (
        tempfile.TemporaryDirectory(prefix="augreid-onnx-") as folder,
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        path = Path(folder) / "model.onnx"
        torch.onnx.export(
            model,
            (example,),
            path,
            dynamo=False,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
        )
        return path.read_bytes()


def export_onnx(
    run: str | Path, out: str | Path | None = None, *, opset: int = OPSET, tolerance: float = TOLERANCE
) -> ExportResult:
    """Export the model of ``run`` (run folder or checkpoint) to ``out`` (default ``model.onnx`` beside it).

    The file is written only after the onnxruntime check passes; a difference
    beyond ``tolerance`` is an ``AugreidError`` stating it.
    """
    onnx, _ = require_onnx()
    checkpoint = resolve_checkpoint_path(run)
    target = Path(out).expanduser() if out is not None else checkpoint.parent / "model.onnx"
    if target.is_dir():
        raise ConfigError(f"--out {target} is a folder; give a file name such as {target / 'model.onnx'}")
    model, info = load_reid_model(checkpoint, device="cpu")
    height, width = int(info["height"]), int(info["width"])
    try:
        traced = _trace(model, check_batch(height, width, 2), opset)
    except Exception as err:  # an operator the exporter lacks, a data-dependent shape: the model cannot go to ONNX
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise AugreidError(
            f"{checkpoint}: torch cannot export {info['model_name']} to ONNX ({type(err).__name__}: {first})"
        ) from None
    proto = onnx.load_from_string(traced)
    metadata = {
        "height": str(height),
        "width": str(width),
        "norm_mean": json.dumps(list(info["norm_mean"])),
        "norm_std": json.dumps(list(info["norm_std"])),
        "model_name": str(info["model_name"]),
        "method": str(info["method"]),
        "checkpoint_sha256": sha256_file(checkpoint),
        "augreid_version": __version__,
    }
    onnx.helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    batch = check_batch(height, width)
    with torch.inference_mode():
        expected = model(batch).float().numpy()
    diffs = [
        float(np.abs(onnx_features(data, batch.numpy()) - expected).max()),
        float(np.abs(onnx_features(data, batch[:1].numpy()) - expected[:1]).max()),
    ]
    worst = max(diffs)
    if not worst <= tolerance:  # NaN fails too
        raise AugreidError(
            f"{checkpoint}: the ONNX model's features differ from torch's by up to {worst:.2e} "
            f"(tolerance {tolerance:.0e}); nothing written"
        )
    atomic_write_bytes(target, data)
    return ExportResult(target, worst, (CHECK_BATCH, 1), height, width, int(expected.shape[1]), opset, metadata)
