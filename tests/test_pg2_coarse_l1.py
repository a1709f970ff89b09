"""G1's optional coarse pose-mask L1: the colour of each region, whatever the pixel-exact alignment."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from augreid.errors import ConfigError
from generators.pg2 import load_preset, losses
from test_pg2_perceptual import train_g1_without_and_with

pytestmark = pytest.mark.usefixtures("one_torch_thread")

H, W = 64, 32


def _shirt(phase: int, colour: tuple[float, float, float] = (1.0, -1.0, -1.0)) -> torch.Tensor:
    """Black image with a checked shirt: ``colour`` on one checkerboard phase, white on the other."""
    img = -torch.ones(1, 3, H, W)
    yy, xx = torch.meshgrid(torch.arange(16, 48), torch.arange(8, 24), indexing="ij")
    on = ((yy + xx + phase) % 2 == 0).float()
    for c, value in enumerate(colour):
        img[0, c, 16:48, 8:24] = on * value + (1 - on)
    return img


def test_a_one_pixel_shift_costs_little_and_a_lost_colour_costs_a_lot():
    target = _shirt(0)
    mask = torch.zeros(1, 1, H, W)
    mask[:, :, 16:48, 8:24] = 1
    shifted = _shirt(1)  # the same checked red shirt, one pixel off
    grey = _shirt(0, colour=(0.0, 0.0, 0.0))  # the right place and checks, the red gone
    pixel = {n: losses.pose_mask_l1(p, target, mask).item() for n, p in (("shifted", shifted), ("grey", grey))}
    coarse = {
        n: losses.coarse_pose_mask_l1(p, target, mask, 8).item() for n, p in (("shifted", shifted), ("grey", grey))
    }
    assert pixel["shifted"] > pixel["grey"]  # pixel L1 prefers the grey shirt: the failure the term is for
    assert coarse["shifted"] == pytest.approx(0.0, abs=1e-6) and coarse["grey"] > 0.1
    assert losses.coarse_pose_mask_l1(target, target, mask, 8).item() == 0.0


def test_g1_trains_with_the_term_and_it_changes_the_weights(tmp_path, demo_root):
    runs = train_g1_without_and_with("train.coarse_l1_weight", 5.0, tmp_path, demo_root)
    assert all("stage1/coarse_l1" not in h for h in runs[0.0].history)
    assert all(h["stage1/coarse_l1"] > 0 for h in runs[5.0].history if "stage1/pose_mask_l1" in h)
    plain, with_term = (load_file(str(runs[w].checkpoint)) for w in (0.0, 5.0))
    assert not all(torch.equal(plain[k], with_term[k]) for k in plain if k.startswith("g1."))


def test_bad_settings_are_reported_together():
    with pytest.raises(ConfigError) as err:
        load_preset("cpu-pose", {"train.coarse_l1_weight": -1.0, "train.coarse_factor": 0})
    assert "coarse_l1_weight" in str(err.value) and "coarse_factor" in str(err.value)
