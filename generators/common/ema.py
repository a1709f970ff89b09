"""An exponential moving average of a generator's weights: the copy that checkpoints hand to inference.

Adam at a still high learning rate moves a small generator around a good region
rather than into it, so single checkpoints of a short run differ noticeably
from one another; averaging the weights over the last ~1/(1 - decay) steps is
the usual cure for generators (Karras et al. 2018; Yazıcı et al., "The unusual
effectiveness of averaging in GAN training", ICLR 2019).
"""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel


def _decay_at(decay: float, updates: int) -> float:
    # TensorFlow's ExponentialMovingAverage warm-up: early on the average follows the weights closely,
    # so that the random initial weights do not linger in the first few thousand steps' checkpoints.
    return min(decay, (1.0 + updates) / (10.0 + updates))


class WeightAverage:
    """``torch.optim.swa_utils.AveragedModel`` with an EMA that warms up, and plain state dicts."""

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        def ema(averaged: torch.Tensor, current: torch.Tensor, updates: torch.Tensor | int) -> torch.Tensor:
            d = _decay_at(decay, int(updates))
            return averaged * d + current * (1.0 - d)

        # use_buffers: a model with batch norm must average its statistics too.
        self.model = AveragedModel(module, avg_fn=ema, use_buffers=True)
        self.model.requires_grad_(False)

    @property
    def module(self) -> torch.nn.Module:
        return self.model.module

    @property
    def updates(self) -> int:
        return int(self.model.n_averaged)

    def update(self, module: torch.nn.Module) -> None:
        self.model.update_parameters(module)

    def load(self, weights: dict[str, torch.Tensor], updates: int) -> None:
        """Restore the average (weights as ``module.state_dict()`` keys) after ``updates`` updates."""
        self.model.module.load_state_dict(weights)
        self.model.n_averaged.fill_(updates)
