"""PG2 ``train.ema_decay``: checkpoints hold G1's weight average, training resumes exactly, stage II starts from it."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from augreid.errors import ConfigError
from generators.pg2 import load_preset
from generators.pg2.checkpoint import load_generator
from generators.common.ema import WeightAverage
from generators.pg2.train import train_generator
from test_pg2 import TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")

G1_ONLY = {**TINY, "train.stage1_steps": 6, "train.stage2_steps": 0, "train.joint_steps": 0, "train.ema_decay": 0.9}


def test_the_average_warms_up_then_follows_the_decay():
    layer = torch.nn.Linear(1, 1, bias=False)
    average = WeightAverage(layer, decay=0.3)
    expected = None
    for step, value in enumerate([4.0, 2.0, 8.0, 0.0, 6.0]):
        layer.weight.data.fill_(value)
        average.update(layer)
        # The first update copies; the n-th after it weighs the old average by min(0.3, (1 + n) / (10 + n)).
        d = min(0.3, (1 + step) / (10 + step))
        expected = value if expected is None else expected * d + value * (1 - d)
        assert average.module.weight.item() == pytest.approx(expected)
    assert average.updates == 5 and d == 0.3  # the warm-up ended within these steps
    assert average.module.weight.item() != layer.weight.item()


def test_checkpoints_hold_the_average_and_the_state_the_training_weights(tmp_path, demo_root):
    cfg = load_preset("cpu-small", G1_ONLY)
    run = train_generator(cfg, demo_root, out=tmp_path / "run", progress=False)
    saved = load_file(str(run.checkpoint))
    state = torch.load(run.checkpoint.with_suffix(".state.pt"), weights_only=False)
    training = state["g1_training"]
    assert state["g1_average_updates"] == 6
    assert saved.keys() == {f"g1.{k}" for k in training}
    assert any(not torch.equal(saved[f"g1.{k}"], v) for k, v in training.items())
    generator = load_generator(run.checkpoint)  # inference reads the average
    assert all(torch.equal(generator.g1.state_dict()[k], saved[f"g1.{k}"]) for k in training)


def test_resume_continues_the_average_exactly(tmp_path, demo_root):
    cfg = load_preset("cpu-small", G1_ONLY)
    straight = train_generator(cfg, demo_root, out=tmp_path / "a", progress=False)
    train_generator(cfg, demo_root, out=tmp_path / "b", progress=False, stop_at=3)
    resumed = train_generator(cfg, demo_root, out=tmp_path / "b", progress=False)
    a, b = load_file(str(straight.checkpoint)), load_file(str(resumed.checkpoint))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = torch.load(straight.checkpoint.with_suffix(".state.pt"), weights_only=False)["g1_training"]
    sb = torch.load(resumed.checkpoint.with_suffix(".state.pt"), weights_only=False)["g1_training"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_stage_two_refines_the_averaged_g1(tmp_path, demo_root):
    cfg = load_preset("cpu-small", {**G1_ONLY, "train.stage2_steps": 2})
    run = train_generator(cfg, demo_root, out=tmp_path / "run", progress=False)
    averaged_g1 = load_file(str(run.checkpoint.parent / "step_00000006.safetensors"))
    final = load_file(str(run.checkpoint))
    # G1 is frozen in stage II: the final checkpoint's G1 is the average made at the end of stage I.
    assert all(torch.equal(final[k], v) for k, v in averaged_g1.items() if k.startswith("g1."))
    assert any(k.startswith("g2.") for k in final)


def test_a_decay_outside_zero_to_one_is_rejected():
    with pytest.raises(ConfigError, match="train.ema_decay"):
        load_preset("cpu-small", {"train.ema_decay": 1.0})
