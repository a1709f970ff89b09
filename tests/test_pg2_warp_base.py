"""PG2's ``model.warp_base``: G1 corrects the part-wise warp of the condition image instead of drawing from scratch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augreid.data.keypoints import MISSING
from augreid.errors import ConfigError
from generators.base import to_tensor_image, to_uint8_image
from generators.pg2 import load_preset
from generators.pg2.checkpoint import load_generator
from generators.common.data import PairDataset, render_pose_maps
from generators.pg2.model import G1, resample, smooth_flow
from generators.pg2.train import prepare_data, train_generator
from generators.common.parts import warp_person
from generators.common.warping import decode_pose
from test_pg2 import TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WARP_G1 = {**TINY, "model.warp_base": "flow", "train.stage1_steps": 3, "train.stage2_steps": 0, "train.joint_steps": 0}


@pytest.fixture(scope="module")
def warp_data(demo_root):
    return prepare_data(load_preset("cpu-small", WARP_G1), demo_root, progress=False)


def test_the_warp_needs_disk_pose_maps():
    with pytest.raises(ConfigError, match="warp_base"):
        load_preset("cpu-small", {**WARP_G1, "pose.map_mode": "gaussian"})


@pytest.mark.parametrize("radius", [1.5, 4.0])
def test_pg2_pose_maps_decode_back_to_the_pose_even_where_the_border_cuts_a_disk(radius):
    pose = np.full((18, 2), MISSING, np.int32)
    pose[0], pose[1], pose[10], pose[13] = (5, 8), (60, 31), (127, 2), (0, 63)  # two joints on the border
    cfg = load_preset("cpu-small", {"pose.radius": radius}).pose
    decoded = decode_pose(render_pose_maps(pose, (128, 64), cfg), radius)
    assert np.array_equal(decoded, pose)


def test_items_carry_the_condition_warped_into_the_target_pose(warp_data):
    cache = warp_data.cache
    plain, warped = PairDataset(cache, warp_data.pairs), PairDataset(cache, warp_data.pairs, warp=True)
    assert "warped" not in plain[(0, False)]
    for flipped in (False, True):
        a, b = warp_data.pairs[0]
        expected, moved = warp_person(
            np.ascontiguousarray(cache.image(a, flipped)), cache.pose(a, flipped), cache.pose(b, flipped)
        )
        item = warped[(0, flipped)]
        assert moved > 0  # the demo's people have torsos: the warp did move parts
        assert torch.equal(item["warped"], to_tensor_image(expected))
        assert not torch.equal(item["warped"], item["condition"])


@pytest.mark.parametrize("kind", ["residual", "flow"])
def test_g1_starts_from_the_warp_and_refuses_to_run_without_it(warp_data, kind):
    g1 = G1(load_preset("cpu-small", {**WARP_G1, "model.warp_base": kind}).model)
    items = [PairDataset(warp_data.cache, warp_data.pairs, warp=True)[(i, False)] for i in range(3)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    start = g1(batch["condition"], batch["target_maps"], batch["warped"])
    assert torch.allclose(start, batch["warped"], atol=1e-5)  # flow: resampled at the pixel centres
    with pytest.raises(ValueError, match="warp_base"):
        g1(batch["condition"], batch["target_maps"])


def test_a_flow_moves_pixels_and_only_the_warps_colours_appear():
    image = torch.zeros(1, 3, 8, 6)
    image[0, :, 2, 3] = 1.0  # one white pixel
    flow = torch.zeros(1, 2, 8, 6)
    flow[0, 0] = -1.0  # every pixel reads the one above it: the image moves down by one row
    moved = resample(image, flow)
    assert moved[0, :, 3, 3].tolist() == pytest.approx([1.0, 1.0, 1.0]) and moved[0, :, 2, 3].abs().max() < 1e-6
    palette = torch.rand(1, 3, 8, 6) * 2 - 1
    wild = resample(palette, torch.randn(1, 2, 8, 6) * 3)
    assert wild.min() >= palette.min() - 1e-6 and wild.max() <= palette.max() + 1e-6  # no colour it did not have


def test_g1s_flow_is_bounded_so_it_cannot_read_one_pixel_everywhere(warp_data):
    g1 = G1(load_preset("cpu-small", WARP_G1).model)
    with torch.no_grad():
        g1.out.bias.copy_(torch.tensor([0.0, -50.0]))  # an output that asks to read far to the left
    item = PairDataset(warp_data.cache, warp_data.pairs, warp=True)[(0, False)]
    warped = -torch.ones(1, 3, 32, 16)
    warped[0, :, :, :8] = 1.0  # left half white: reading more than 7 px to the left would bring white to the edge
    out = g1(item["condition"][None], item["target_maps"][None], warped)
    assert out[0, :, :, -1].max() < -0.99  # the right edge reads FLOW_MAX = 6 px to its left: still black
    assert out[0, :, :, 9].min() > 0.99  # and the column 6 px right of the white half turned white


def test_the_flow_is_smooth_over_cells():
    speckle = torch.randn(1, 2, 16, 8, generator=torch.Generator().manual_seed(0))
    smooth = smooth_flow(speckle)
    assert smooth.shape == speckle.shape
    assert smooth.diff(dim=-1).abs().mean() < 0.3 * speckle.diff(dim=-1).abs().mean()
    assert torch.allclose(smooth_flow(torch.full((1, 2, 16, 8), 2.5)), torch.full((1, 2, 16, 8), 2.5))


def test_a_trained_checkpoint_corrects_the_warp_synth_would_make(tmp_path, demo_root, warp_data):
    run = train_generator(load_preset("cpu-small", WARP_G1), demo_root, out=tmp_path, progress=False, data=warp_data)
    assert run.finished and run.step == 3
    gen = load_generator(run.checkpoint)
    cache, (a, b) = warp_data.cache, warp_data.pairs[1]
    condition = to_tensor_image(cache.image(a, False))[None]
    maps = torch.from_numpy(gen.render_pose(cache.pose(b, False)))[None]
    out = gen.generate(condition, maps, condition_poses=cache.pose(a, False)[None])
    warp, _ = warp_person(cache.image(a, False), cache.pose(a, False), cache.pose(b, False))
    difference = np.abs(to_uint8_image(out[0]).astype(int) - warp.astype(int))
    assert 0 < difference.mean() < 40  # three steps from the warp: changed, but still the warp's picture
    with torch.no_grad():
        from_scratch = gen.g1(condition, maps, torch.zeros_like(condition)).clamp(-1, 1)
    assert not torch.equal(out, from_scratch)  # the output depends on the warp it was given
