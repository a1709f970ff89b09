"""G1's optional perceptual term: frozen ImageNet MobileNetV2 features of output and target."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from augreid.errors import ConfigError
from generators.pg2 import load_preset
from generators.common.features import PerceptualLoss
from generators.pg2.train import prepare_data, train_generator
from test_pg2 import TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")

G1_ONLY = {**TINY, "train.stage1_steps": 3, "train.stage2_steps": 0, "train.joint_steps": 0}


def _image(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 64, 32, generator=g) * 2 - 1


def test_identical_images_cost_nothing_and_a_blur_costs_something():
    loss = PerceptualLoss()
    target = _image()
    mask = torch.zeros(2, 1, 64, 32)
    assert loss(target.clone(), target, mask).item() == pytest.approx(0.0, abs=1e-6)
    blurred = F.avg_pool2d(target, 3, stride=1, padding=1, count_include_pad=False)
    assert loss(blurred, target, mask).item() > 0.05


def test_a_change_inside_the_mask_costs_more_than_the_same_change_outside():
    loss = PerceptualLoss()
    target = _image()
    mask = torch.zeros(2, 1, 64, 32)
    mask[:, :, :32] = 1.0  # the person is the top half
    noise = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 0.5
    inside, outside = target.clone(), target.clone()
    inside[:, :, :32] += noise
    outside[:, :, 32:] += noise
    assert loss(inside, target, mask) > 1.3 * loss(outside, target, mask)


def test_only_the_prediction_gets_gradients_and_the_statistics_stay_imagenets():
    loss = PerceptualLoss()
    before = {k: v.clone() for k, v in loss.state_dict().items()}
    loss.train()  # what a trainer's .train() would do: the term stays in eval mode
    assert not loss.training and not any(m.training for m in loss.modules())
    pred = _image(2).requires_grad_(True)
    loss(pred, _image(), torch.ones(2, 1, 64, 32)).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())
    assert all(torch.equal(before[k], v) for k, v in loss.state_dict().items())  # BN running stats untouched


def train_g1_without_and_with(setting: str, weight: float, out, demo_root) -> dict[float, Any]:
    """Three G1 steps on the demo with ``setting`` at 0 and at ``weight`` (same cached data); both must finish."""
    data = prepare_data(load_preset("cpu-small", G1_ONLY), demo_root, progress=False)
    runs = {}
    for w in (0.0, weight):
        cfg = load_preset("cpu-small", {**G1_ONLY, setting: w})
        runs[w] = train_generator(cfg, demo_root, out=out / str(w), progress=False, data=data)
        assert runs[w].finished and runs[w].step == 3
    return runs


def test_g1_trains_with_the_term_and_it_changes_the_weights(tmp_path, demo_root):
    runs = train_g1_without_and_with("train.perceptual_weight", 1.0, tmp_path, demo_root)
    assert all("stage1/perceptual" not in h for h in runs[0.0].history)
    assert all(h["stage1/perceptual"] > 0 for h in runs[1.0].history if "stage1/pose_mask_l1" in h)
    plain, with_term = (load_file(str(runs[w].checkpoint)) for w in (0.0, 1.0))
    assert not all(torch.equal(plain[k], with_term[k]) for k in plain if k.startswith("g1."))
    assert not any(k.startswith(("stages.", "perceptual")) for k in with_term)  # frozen features are not saved


def test_a_negative_weight_is_refused():
    with pytest.raises(ConfigError, match="perceptual_weight"):
        load_preset("cpu-pose", {"train.perceptual_weight": -1.0})
