"""torchreid's softmax engine: cross entropy only, with the synthetic label schemes."""

from __future__ import annotations

from typing import Any

from torch import nn

from augreid.reid.engine import SyntheticSoftmaxEngine, build_torchreid_model, label_criterion
from augreid.reid.methods.base import ReidMethod


class SoftmaxMethod(ReidMethod):
    name = "softmax"
    identity_batches = False

    def build_model(self, model_name: str, num_classes: int, options: dict[str, Any]) -> nn.Module:
        return build_torchreid_model(model_name, num_classes, "softmax")

    def build_engine(self, config, datamanager, model, optimizer, scheduler, use_gpu: bool):
        return SyntheticSoftmaxEngine(
            datamanager, model, optimizer, scheduler, label_criterion(config, datamanager), use_gpu=use_gpu
        )
