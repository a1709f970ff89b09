"""Pixel losses every pose-guided generator may use.

* Pose-mask L1 (PG2): ``||(G(I_A, P_B) - I_B) * (1 + M_B)||_1``, averaged over
  pixels and channels so that its scale does not depend on the image size.
* Masked L1: the mean absolute error inside the mask only (an evaluation score).
"""

from __future__ import annotations

import torch


def pose_mask_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``|pred - target| * (1 + mask)``; ``mask`` is (B, 1, H, W) and broadcasts."""
    return ((pred.float() - target.float()).abs() * (1.0 + mask.float())).mean()


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error inside the mask only (an evaluation score, 0 for an empty mask)."""
    weight = mask.float().expand_as(pred)
    return ((pred.float() - target.float()).abs() * weight).sum() / weight.sum().clamp_min(1.0)
