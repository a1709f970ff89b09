"""ImageNet weights for torchreid's resnet50 from torch's download cache ($TORCH_HOME/hub/checkpoints), never downloaded.

The weights here are a randomly initialised torchvision resnet50 saved under the
published file name: the mapping, not the numbers, is what is tested.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from typer.testing import CliRunner

from augreid.cli import app
from augreid.errors import ConfigError
from augreid.reid.methods import get_method
from augreid.reid.models import build_torchreid_model
from augreid.reid.pretrained import HUB_FILES, initialise, load_imagenet, resolve_pretrained

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _learned(model: torch.nn.Module) -> set[str]:
    return {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}


@pytest.fixture(scope="module")
def torchvision_resnet50() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None)
    with torch.no_grad():  # BN statistics that are not the defaults, so that they must be copied too
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture()
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


@pytest.fixture()
def hub_file(torch_home, torchvision_resnet50):
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    path = folder / "resnet50-19c8e357.pth"
    torch.save(torchvision_resnet50.state_dict(), path)
    return path


def test_mapped_resnet50_gives_torchvisions_features(hub_file, torchvision_resnet50, capsys):
    assert resolve_pretrained("imagenet", "resnet50") == "imagenet"
    model = build_torchreid_model("resnet50", 7)
    provenance = load_imagenet("resnet50", model)
    assert provenance["file"] == "resnet50-19c8e357.pth" and len(provenance["sha256"]) == 64
    assert provenance["sha256_matches_name"] is False  # a random file under the published name: said, not hidden
    assert "does not begin with the hash in its name" in capsys.readouterr().err
    assert str(hub_file.parent) not in str(provenance)  # no machine path in run.json
    images = torch.randn(2, 3, 128, 64, generator=torch.Generator().manual_seed(1))
    reference = torch.nn.Sequential(*list(torchvision_resnet50.children())[:-1])  # up to the average pool
    with torch.no_grad():
        ours = model.eval()(images)
        theirs = reference(images).flatten(1)
    assert ours.shape == (2, 2048)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_every_backbone_tensor_is_set_in_bots_model_too(hub_file):
    method = get_method("bot")
    model = method.build_model("resnet50", 7, {"last_stride": 1})
    backbone = method.backbone(model)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    provenance = initialise(backbone, "resnet50", resolve_pretrained("auto", "resnet50"))
    assert provenance is not None and provenance["name"] == "imagenet"
    source = torch.load(hub_file, weights_only=True)
    for key in _learned(backbone):
        assert torch.equal(backbone.state_dict()[key], source[key]), key
    assert not all(torch.equal(before[k], backbone.state_dict()[k]) for k in _learned(backbone))


def test_files_are_taken_in_order(torch_home, torchvision_resnet50):
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    state = torchvision_resnet50.state_dict()
    torch.save(state, folder / "resnet50-11ad3fa6.pth")
    torch.save(state, folder / "resnet50-0676ba61.pth")
    assert load_imagenet("resnet50", build_torchreid_model("resnet50", 3))["file"] == "resnet50-0676ba61.pth"


def test_without_the_file_a_one_line_error_names_the_files_and_the_folder(torch_home, tmp_path, capsys):
    folder = torch_home / "hub" / "checkpoints"
    with pytest.raises(ConfigError) as caught:
        resolve_pretrained("imagenet", "resnet50")
    message = str(caught.value)
    assert "\n" not in message and str(folder) in message
    assert all(name in message for name in HUB_FILES["resnet50"])
    assert resolve_pretrained("auto", "resnet50") == "none"  # auto: random weights, saying where it looked
    note = capsys.readouterr().err
    assert "resnet50-19c8e357.pth" in note and str(folder) in note
    result = CliRunner().invoke(
        app, ["train-reid", "--out", str(tmp_path / "run"), "--model", "resnet50", "--pretrained", "imagenet"]
    )
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "resnet50-19c8e357.pth" in lines[0] and str(folder) in lines[0]
    assert not (tmp_path / "run").exists()


def test_a_file_of_another_network_is_refused(torch_home):
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), folder / "resnet50-19c8e357.pth")
    with pytest.raises(ConfigError, match="ImageNet mapping by name: .*other shapes"):
        load_imagenet("resnet50", build_torchreid_model("resnet50", 3))
    (folder / "resnet50-19c8e357.pth").write_text("not weights")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_imagenet("resnet50", build_torchreid_model("resnet50", 3))
