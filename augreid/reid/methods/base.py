"""The re-ID method interface (see ``augreid/reid/methods/__init__.py`` for the registry)."""

from __future__ import annotations

import abc
from typing import Any

from torch import nn
from torchreid.reid import optim

from augreid.reid.config import ReidConfig


class ReidMethod(abc.ABC):
    """How one kind of re-ID training builds its model, losses, optimiser and engine.

    The engine ``build_engine`` returns follows torchreid's ``Engine``: ``train(print_freq)``
    runs one epoch and steps the schedule; it has ``epoch``, ``max_epoch``, ``writer``,
    ``train_loader`` and ``get_current_lr()``.
    """

    name: str = ""
    # P identities x K images per batch (triplet-style losses need positives in the batch).
    identity_batches: bool = False

    def model_options(self, config: ReidConfig) -> dict[str, Any]:
        """What, beyond model name and class count, rebuilds the same network (recorded in checkpoints)."""
        return {}

    @abc.abstractmethod
    def build_model(self, model_name: str, num_classes: int, options: dict[str, Any]) -> nn.Module:
        """A network with random weights; in eval mode it maps images to retrieval features."""

    def backbone(self, model: nn.Module) -> nn.Module:
        """The part of ``model`` that ImageNet weights initialise (a torchreid model)."""
        return model

    def build_optimizer(self, model: nn.Module, config: ReidConfig):
        return optim.build_optimizer(model, optim=config.optimizer, lr=config.lr, weight_decay=config.weight_decay)

    def build_scheduler(self, optimizer, config: ReidConfig):
        _, milestones = config.schedule
        stepsize = (
            milestones if config.lr_scheduler == "multi_step" else milestones[-1] if milestones else config.epochs
        )
        return optim.build_lr_scheduler(
            optimizer, lr_scheduler=config.lr_scheduler, stepsize=stepsize, gamma=config.gamma, max_epoch=config.epochs
        )

    @abc.abstractmethod
    def build_engine(self, config: ReidConfig, datamanager, model: nn.Module, optimizer, scheduler, use_gpu: bool):
        """The training engine (model already on its device)."""
