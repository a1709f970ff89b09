"""The re-ID method interface (see ``augreid/reid/methods/__init__.py`` for the registry)."""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from torch import nn
from torchreid.reid import optim

if TYPE_CHECKING:
    from augreid.reid.config import ReidConfig


@dataclass
class NoOptions:
    """A method without options of its own."""


class ReidMethod(abc.ABC):
    """How one kind of re-ID training builds its model, losses, optimiser and engine.

    The engine ``build_engine`` returns follows torchreid's ``Engine``: ``train(print_freq)``
    runs one epoch and steps the schedule; it has ``epoch``, ``max_epoch``, ``writer``,
    ``train_loader`` and ``get_current_lr()``.
    """

    name: str = ""
    # P identities x K images per batch (triplet-style losses need positives in the batch).
    identity_batches: ClassVar[bool] = False
    # Trains under torchrun (DistributedDataParallel); torchreid's own engines run in one process.
    supports_ddp: ClassVar[bool] = False
    # The schedule: BoT's linear warmup then steps at every milestone (True), or torchreid's lr_scheduler.
    warmup_schedule: ClassVar[bool] = False
    # The method's own settings: ``[reid.method_options]`` / ``--set method_options.KEY=VALUE``, checked by the
    # settings loader against this dataclass (its defaults are the method's defaults).
    Options: ClassVar[type] = NoOptions

    def model_options(self, config: ReidConfig) -> dict[str, Any]:
        """What, beyond model name and class count, rebuilds the same network (recorded in checkpoints)."""
        return dataclasses.asdict(config.options_of(self))

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
