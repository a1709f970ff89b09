"""torchreid's triplet engine: cross entropy + batch-hard triplet on the pooled feature, P x K batches."""

from __future__ import annotations

from typing import Any

from torch import nn

from augreid.reid.engine import SyntheticTripletEngine, build_torchreid_model, label_criterion, triplet_criterion
from augreid.reid.methods.base import ReidMethod


class TripletMethod(ReidMethod):
    name = "triplet"
    identity_batches = True

    def build_model(self, model_name: str, num_classes: int, options: dict[str, Any]) -> nn.Module:
        return build_torchreid_model(model_name, num_classes, "triplet")

    def build_engine(self, config, datamanager, model, optimizer, scheduler, use_gpu: bool):
        return SyntheticTripletEngine(
            datamanager,
            model,
            optimizer,
            scheduler,
            label_criterion(config, datamanager),
            triplet_criterion(config),
            weight_t=1.0,
            weight_x=1.0,
            use_gpu=use_gpu,
        )
