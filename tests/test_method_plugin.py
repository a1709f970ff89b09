"""A re-ID method is one file plus one registry line: this test's method touches no other file of augreid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from torch import nn

from augreid.errors import ConfigError
from augreid.reid.checkpoint import load_reid_model
from augreid.reid.config import resolve_config
from augreid.reid.engine import SyntheticTripletEngine, build_torchreid_model, label_criterion, triplet_criterion
from augreid.reid.methods import method_names, register_method, unregister_method
from augreid.reid.methods.base import ReidMethod
from augreid.reid.train import train_reid
from tests.test_reid_training import TINY


@dataclass
class PlainTripletOptions:
    weight_x: float = 1.0  # cross entropy's weight beside the triplet loss

    def problems(self) -> list[str]:
        return [] if self.weight_x >= 0 else [f"weight_x: {self.weight_x} must be >= 0"]


class PlainTripletMethod(ReidMethod):
    """Batch-hard triplet + weighted cross entropy on a plain torchreid model (no BNNeck)."""

    name = "plain-triplet"
    identity_batches = True
    Options = PlainTripletOptions

    def build_model(self, model_name: str, num_classes: int, options: dict[str, Any]) -> nn.Module:
        return build_torchreid_model(model_name, num_classes, "triplet")

    def build_engine(self, config, datamanager, model, optimizer, scheduler, use_gpu: bool):
        weight_x = config.options_of(self).weight_x
        return SyntheticTripletEngine(
            datamanager,
            model,
            optimizer,
            scheduler,
            label_criterion(config, datamanager),
            triplet_criterion(config),
            weight_x=weight_x,
            use_gpu=use_gpu,
        )


@pytest.fixture()
def plain_triplet():
    register_method("plain-triplet", PlainTripletMethod)
    yield
    unregister_method("plain-triplet")  # the registry is global: later tests must not see it


def test_a_registered_method_is_a_choice_with_its_own_checked_options(plain_triplet, demo_root, tmp_path):
    assert "plain-triplet" in method_names()
    settings = {**TINY, "data": str(demo_root), "method": "plain-triplet"}
    with pytest.raises(ConfigError) as err:
        resolve_config(None, {**settings, "method_options": {"weight_x": -1, "last_stride": 1}})
    assert "method_options.weight_x: -1.0 must be >= 0" in str(err.value)
    assert "method_options.last_stride: unknown key" in str(err.value)  # bot's option is not this method's
    config = resolve_config(None, {**settings, "method_options": {"weight_x": 0.5}})
    result = train_reid(config, tmp_path / "run", progress=False)
    model, info = load_reid_model(result.run_dir)
    assert info["method"] == "plain-triplet" and info["method_options"] == {"weight_x": 0.5}
    assert sum(p.numel() for p in model.parameters()) > 0


def test_an_unregistered_method_is_refused_by_name():
    assert "plain-triplet" not in method_names()
    with pytest.raises(ConfigError, match="method: 'plain-triplet' is not one of bot, softmax, triplet"):
        resolve_config(None, {"method": "plain-triplet"})


def test_bot_refuses_a_last_stride_it_cannot_apply(demo_root, tmp_path):
    from augreid.reid.methods import get_method

    config = resolve_config(None, {**TINY, "model": "osnet_x0_25", "method_options": {"last_stride": 1}})
    with pytest.raises(ConfigError, match="last_stride: 1 is only known for"):
        get_method("bot").model_options(config)
    unset = resolve_config(None, {**TINY, "model": "osnet_x0_25"})
    assert get_method("bot").model_options(unset) == {"last_stride": None}  # the checkpoint says what was built
