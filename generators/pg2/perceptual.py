"""An optional perceptual term for G1: distances between frozen ImageNet features of output and target.

Pose-mask L1 alone rewards the average of the plausible images, a blur; on CPU budgets
that blur is what keeps MediaPipe from finding a person in about half of G1's images
(issue 12). Feature distances (Johnson et al. 2016; PATN and Deformable GAN use VGG-19's)
also count the edges and texture that L1 averages away. The only ImageNet weights on this
machine are MobileNetV2's (``augreid.imagenet``), so its early stages stand in for VGG's
relu layers. ``train.perceptual_weight = 0`` (the default) builds nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from augreid.imagenet import IMAGENET_MEAN, IMAGENET_STD, mobilenetv2_imagenet_features

# Ends of torchvision's stride-4 (24 channels) and stride-8 (32 channels) stages: at 128x64
# they are 32x16 and 16x8 maps, fine enough for a limb; deeper stages are mostly 1-4 px wide.
STAGE_ENDS = (4, 7)


class PerceptualLoss(nn.Module):
    """Mean over the stages of ``|f(pred) - f(target)| * (1 + mask)``, images in [-1, 1], mask (B, 1, H, W)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, stage_ends: tuple[int, ...] = STAGE_ENDS) -> None:
        super().__init__()
        features = mobilenetv2_imagenet_features()
        starts = (0, *stage_ends[:-1])
        self.stages = nn.ModuleList(features[a:b] for a, b in zip(starts, stage_ends))
        for p in self.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.eval()

    def train(self, mode: bool = True) -> PerceptualLoss:
        # Frozen BN statistics: the ImageNet running means, whatever the trainer's mode.
        return super().train(False)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x.float() + 1.0) / 2.0 - self.mean) / self.std
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self._features(target)
        total = pred.new_zeros((), dtype=torch.float32)
        for got, want in zip(self._features(pred), wanted):
            weight = 1.0 + F.interpolate(mask.float(), size=got.shape[-2:], mode="area")
            total = total + ((got - want).abs() * weight).mean()
        return total / len(self.stages)
