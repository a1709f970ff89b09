"""``augreid features`` (the features ``augreid eval`` ranks with, in one file) and ``augreid export --format onnx``."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from augreid.cli import app
from augreid.evaluation.feature_export import FORMAT, read_features_file
from augreid.evaluation.features import eval_transform, model_features, run_features
from augreid.reid.checkpoint import build_reid_model, load_reid_model, save_reid_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")
HEIGHT, WIDTH = 64, 32


@pytest.fixture(scope="module")
def run_dir(market, tmp_path_factory):
    """A bot osnet_x0_25 run (random weights, BN statistics moved off their defaults) on the demo dataset."""
    torch.manual_seed(0)
    model = build_reid_model("osnet_x0_25", market.num_train_pids, "bot", {"last_stride": None})
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    info = {
        "model_name": "osnet_x0_25",
        "num_classes": market.num_train_pids,
        "method": "bot",
        "method_options": {"last_stride": None},
        "height": HEIGHT,
        "width": WIDTH,
        "norm_mean": [0.5, 0.45, 0.4],
        "norm_std": [0.25, 0.2, 0.22],
        "dataset_fingerprint": market.fingerprint(),
    }
    run = tmp_path_factory.mktemp("features") / "run"
    save_reid_checkpoint(run, model, info, epoch=1)
    return run


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_features_are_the_ones_eval_uses(run_dir, demo_root, market, tmp_path):
    eval_feats = run_features(run_dir, market, flip=True, normalize=True, use_cache=False, progress=False)
    for split, expected, records in (
        ("query", eval_feats.query, market.query),
        ("gallery", eval_feats.gallery, market.gallery),
    ):
        out = tmp_path / f"{split}.safetensors"
        result = _invoke(
            "features", str(run_dir), "--data", str(demo_root), "--split", split, "--flip", "--out", str(out)
        )
        assert result.exit_code == 0, result.output
        written = read_features_file(out)
        np.testing.assert_array_equal(written.features, expected)
        assert written.names == [r.name for r in records]
        assert written.pids.tolist() == [r.pid for r in records] and written.camids.tolist() == [
            r.camid for r in records
        ]
        assert np.allclose(np.linalg.norm(written.features, axis=1), 1.0, atol=1e-5)
    meta = written.metadata
    assert meta["format"] == FORMAT and meta["normalization"] == "l2" and meta["flip"] == "true"
    assert meta["dataset_fingerprint"] == market.fingerprint() and meta["split"] == "gallery"
    assert json.loads(meta["norm_mean"]) == [0.5, 0.45, 0.4] and meta["model_name"] == "osnet_x0_25"


def test_raw_features_of_a_folder(run_dir, demo_root, market, tmp_path):
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    chosen = market.query[:3]
    shutil.copy(chosen[0].path, folder / "b.jpg")
    shutil.copy(chosen[1].path, folder / "a.jpg")
    shutil.copy(chosen[2].path, folder / "sub" / "c.jpg")
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "mine.safetensors"
    result = _invoke("features", str(run_dir), "--split", str(folder), "--raw", "--out", str(out), "-q")
    assert result.exit_code == 0, result.output
    with safe_open(str(out), "np") as handle:  # readable without augreid, as documented
        names = json.loads(handle.metadata()["names"])
        features = handle.get_tensor("features")
        assert set(handle.keys()) == {"features"}  # no identities for a plain folder
    assert names == ["a.jpg", "b.jpg", "sub/c.jpg"]
    model, info = load_reid_model(run_dir)
    raw = model_features(model, info, [chosen[1].path, chosen[0].path, chosen[2].path], progress=False)
    np.testing.assert_array_equal(features, raw)  # eval's extraction, not normalised


def test_bad_requests_are_one_line_errors(run_dir, tmp_path):
    for args, text in (
        (["--split", str(tmp_path / "absent")], "neither query, gallery, train nor an existing folder"),
        (["--split", str(tmp_path)], "no images"),
    ):
        result = _invoke("features", str(run_dir), *args, "--out", str(tmp_path / "f.safetensors"))
        assert result.exit_code == 2 and text in result.output and len(result.output.strip().splitlines()) == 1
    result = _invoke("features", str(tmp_path / "norun"), "--out", str(tmp_path / "f.safetensors"))
    assert result.exit_code == 2 and "checkpoint not found" in result.output
    result = _invoke("export", str(run_dir), "--format", "tflite")
    assert result.exit_code == 2 and "expected one of onnx" in result.output


def test_export_without_the_extra_names_it(run_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    result = _invoke("export", str(run_dir))
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "pip install -e '.[onnx]'" in lines[0]


def test_onnx_model_matches_torch(run_dir, market, tmp_path, extras):
    onnx = extras.module("onnx", "[onnx]")
    ort = extras.module("onnxruntime", "[onnx]")
    out = tmp_path / "reid.onnx"
    result = _invoke("export", str(run_dir), "--format", "onnx", "--out", str(out))
    assert result.exit_code == 0, result.output
    reported = float(result.output.split("max |difference| ")[1].split()[0])
    assert reported <= 1e-4
    proto = onnx.load(str(out))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["height"] == str(HEIGHT) and json.loads(props["norm_std"]) == [0.25, 0.2, 0.22]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"  # dynamic batch size
    model, info = load_reid_model(run_dir)
    transform = eval_transform(HEIGHT, WIDTH, info["norm_mean"], info["norm_std"])
    from augreid.data import read_image

    for count in (5, 1):  # real images, batch sizes other than the export's
        batch = torch.stack([transform(read_image(r.path)) for r in market.query[:count]])
        with torch.no_grad():
            expected = model(batch).numpy()
        got = session.run(["features"], {"images": batch.numpy()})[0]
        assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-4
