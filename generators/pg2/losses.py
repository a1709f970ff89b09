"""PG2 losses.

* Pose-mask L1 (stage I, and the L1 term of stage II):
  ``||(G(I_A, P_B) - I_B) * (1 + M_B)||_1`` (``generators.common.losses``).
* Coarse pose-mask L1 (optional, stage I): the same distance between images
  average-pooled ``factor`` times, i.e. the colour of each region, which a
  misaligned but right-coloured output matches and a grey one does not.
* Adversarial terms with binary cross-entropy on logits: the generator wants
  D(I_A, fake) = 1; D wants D(I_A, I_B) = 1 and D(I_A, fake) = 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from generators.common.losses import masked_l1, pose_mask_l1

__all__ = ["coarse_pose_mask_l1", "discriminator_loss", "generator_adversarial", "masked_l1", "pose_mask_l1"]


def coarse_pose_mask_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, factor: int) -> torch.Tensor:
    """:func:`pose_mask_l1` between ``factor``-times average-pooled images (and mask)."""
    return pose_mask_l1(*(F.avg_pool2d(x.float(), factor) for x in (pred, target, mask)))


def generator_adversarial(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(fake_logits.float(), torch.ones_like(fake_logits, dtype=torch.float32))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    real = F.binary_cross_entropy_with_logits(real_logits.float(), torch.ones_like(real_logits, dtype=torch.float32))
    fake = F.binary_cross_entropy_with_logits(fake_logits.float(), torch.zeros_like(fake_logits, dtype=torch.float32))
    return 0.5 * (real + fake)
