"""The comparison protocol: schedules that run their course, arms that differ only in the extra images,
channels_last training that computes what contiguous training does, a learning curve that leaves training as it was."""

from __future__ import annotations

import json
import random
import tomllib
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from augreid.cli import app
from augreid.errors import ConfigError
from augreid.pipeline.recipe import validate
from augreid.pipeline.reid_section import ARMS
from augreid.pipeline.stages import _train_reid_stages
from augreid.reid.config import resolve_config
from augreid.reid.datasets import REAL, load_synthetic_set
from augreid.reid.engine import ReidDataManager
from augreid.reid.methods import get_method
from augreid.reid.train import train_reid
from reid_helpers import TINY

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.toml"))


# ---------------------------------------------------------------- schedules


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"epochs": 20, "stepsize": [20, 26]}, "stepsize", "never decays"),
        ({"epochs": 20, "stepsize": [12], "warmup_epochs": 12}, "warmup_epochs", "decays before warmup has ended"),
        ({"epochs": 5, "stepsize": [], "warmup_epochs": 5}, "warmup_epochs", "warmup never ends"),
        ({"epochs": 8, "method": "softmax", "lr_scheduler": "single_step", "stepsize": [8]}, "stepsize", "never"),
    ],
)
def test_a_schedule_that_cannot_run_its_course_is_a_settings_error(overrides, field, says):
    with pytest.raises(ConfigError, match=f"{field}: .*{says}"):
        resolve_config(None, overrides)


def test_the_default_schedule_follows_the_number_of_epochs():
    assert resolve_config(None, {"epochs": 120}).schedule == (10, [40, 70])  # BoT's own
    for epochs in (1, 2, 5, 20, 30, 60):
        warmup, milestones = resolve_config(None, {"epochs": epochs}).schedule
        assert all(warmup < m < epochs for m in milestones)
    assert resolve_config(None, {"epochs": 20, "stepsize": [12, 17], "warmup_epochs": 2}).schedule == (2, [12, 17])
    cosine = resolve_config(None, {"epochs": 4, "method": "softmax", "lr_scheduler": "cosine", "stepsize": [9]})
    assert cosine.epochs == 4  # cosine uses no milestone: nothing to reach


def test_the_cli_and_a_recipe_report_a_schedule_that_never_decays(tmp_path):
    result = CliRunner().invoke(
        app, ["train-reid", "--out", str(tmp_path / "r"), "--epochs", "10", "--set", "stepsize=[10]"]
    )
    assert result.exit_code == 2 and "stepsize: milestone(s) [10] at or beyond epochs = 10" in result.output
    with pytest.raises(ConfigError, match="stepsize: milestone"):
        validate({"name": "x", "reid": {"epochs": 20, "stepsize": [25]}})


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_has_a_schedule_that_runs_its_course(path):
    reid = tomllib.loads(path.read_text())["reid"]
    config = resolve_config(None, {k: v for k, v in reid.items() if k != "pretrained"})
    warmup, milestones = config.schedule
    assert milestones and all(warmup < m < config.epochs for m in milestones)


# ---------------------------------------------------------------- arms


def _arm_options(path: Path) -> dict[str, dict]:
    """The train-reid options the pipeline gives each arm of seed 0 for this recipe (on the demo data)."""
    raw = tomllib.loads(path.read_text())
    raw["dataset"] = {"root": "demo"}
    raw["reid"].pop("pretrained", None)  # a recipe's weights file need not exist here
    raw.pop("generator", None)
    raw.pop("synth", None)
    recipe = validate(raw, base_dir=path.parent)
    stages = []
    _train_reid_stages(recipe, {}, stages)
    return {s.settings["arm"]: s.settings["options"] for s in stages if s.settings["seed"] == recipe.seeds[0]}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_arms_take_equal_steps_with_equal_real_images_per_batch(path, market, synth_root):
    options = _arm_options(path)
    assert list(options) == list(ARMS)
    loaders = {}
    for arm, source in ARMS.items():
        given = {**options[arm], "height": 64, "width": 32, "workers": 0, "eval_every": 0}
        config = resolve_config(None, {**given, "synthetic": str(synth_root) if source else None})
        synthetic = load_synthetic_set(synth_root, market) if source else None
        method = get_method(config.method)
        manager = ReidDataManager(market, synthetic, config, identity=method.identity_batches)
        random.seed(0)
        loaders[arm] = (config, manager, list(manager.batch_sampler))
    steps = {arm: len(batches) for arm, (_, _, batches) in loaders.items()}
    assert len(set(steps.values())) == 1, steps
    for arm, (config, manager, batches) in loaders.items():
        real = {sum(manager.trainset.train[i][3] == REAL for i in b) for b in batches}
        assert real == {config.batch_size}, arm
        extra = {len(b) - config.batch_size for b in batches}
        assert extra == ({0} if ARMS[arm] is None else {config.synthetic_per_batch}), arm
    schedules = {arm: c.schedule for arm, (c, _, _) in loaders.items()}
    assert len(set(map(str, schedules.values()))) == 1


# ---------------------------------------------------------------- training


def test_channels_last_training_computes_the_contiguous_loss(demo_root):
    method = get_method("bot")
    torch.manual_seed(0)
    model = method.build_model("mobilenetv2_x1_0", 10, {"last_stride": 1}).train()
    images, pids = torch.randn(8, 3, 64, 32), torch.arange(8) % 4
    other = method.build_model("mobilenetv2_x1_0", 10, {"last_stride": 1}).train()
    other.load_state_dict(model.state_dict())
    other = other.to(memory_format=torch.channels_last)
    losses = []
    for net, batch in ((model, images), (other, images.contiguous(memory_format=torch.channels_last))):
        logits, feature = net(batch)
        loss = torch.nn.functional.cross_entropy(logits, pids) + feature.pow(2).mean()
        loss.backward()
        losses.append((loss.item(), net.classifier.weight.grad.clone()))
    assert losses[0][0] == pytest.approx(losses[1][0], rel=1e-4)
    # The head's gradient; deep in the backbone, sums in another order differ by rounding, amplified by BN.
    difference = (losses[0][1] - losses[1][1]).norm() / losses[0][1].norm()
    assert difference < 1e-3, difference


def test_a_learning_curve_leaves_training_as_it_was(demo_root, tmp_path):
    from augreid.evaluation import evaluate_rank

    settings = {**TINY, "data": str(demo_root), "epochs": 2, "iters_per_epoch": 2, "workers": 1}
    plain = train_reid(resolve_config(None, settings), tmp_path / "plain", progress=False)
    curve = train_reid(
        resolve_config(None, {**settings, "eval_every": 1}),
        tmp_path / "curve",
        progress=False,
        evaluate_rank=evaluate_rank,
    )
    a = torch.load(plain.checkpoint, weights_only=False)["state_dict"]
    b = torch.load(curve.checkpoint, weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    points = json.loads((curve.run_dir / "run.json").read_text())["learning_curve"]
    assert [p["epoch"] for p in points] == [1, 2] and [p["step"] for p in points] == [2, 4]
    schedule = json.loads((plain.run_dir / "run.json").read_text())["schedule"]
    assert schedule["optimizer_steps"] == 4 and schedule["lr_first"] > 0 and schedule["lr_last"] > 0
