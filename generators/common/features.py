"""Feature losses on frozen ImageNet features: the perceptual L1 and the nearest-neighbour loss.

Pixel losses reward the average of the plausible images, a blur; feature
distances (Johnson et al. 2016; PATN and Deformable GAN use VGG-19's) also count
edges and texture. The only ImageNet weights available offline are
MobileNetV2's (``augreid.imagenet``), so its early stages stand in for VGG's
relu layers. Stages are given by where they end in torchvision's
``mobilenet_v2().features``: 2 = stride 2 (16 channels), 4 = stride 4 (24),
7 = stride 8 (32); ``0`` is the (ImageNet-normalised) image itself.

* :class:`PerceptualLoss`: L1 between the features of output and target at the
  same positions, weighted by ``1 + mask``.
* :class:`NearestNeighbourLoss` (Siarohin et al. 2018): for every position of the
  output, the L1 distance to the *closest* target feature in a ``k x k``
  neighbourhood of that position, weighted by ``1 + mask``; a target photographed
  a few pixels off (another camera, a pose estimate's error) then costs nothing
  for the misalignment, only for content that is nowhere near.

Both are frozen: the batch-norm statistics stay ImageNet's whatever the
trainer's mode, no parameter takes a gradient, only the prediction does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from augreid.imagenet import IMAGENET_MEAN, IMAGENET_STD, mobilenetv2_imagenet_features

# Ends of torchvision's stride-4 (24 channels) and stride-8 (32 channels) stages: at 128x64
# they are 32x16 and 16x8 maps, fine enough for a limb; deeper stages are mostly 1-4 px wide.
STAGE_ENDS = (4, 7)


class ImageNetStages(nn.Module):
    """Frozen MobileNetV2 features of images in [-1, 1], one map per entry of ``stage_ends`` (0 = the image)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, stage_ends: tuple[int, ...] = STAGE_ENDS) -> None:
        super().__init__()
        ends = tuple(int(e) for e in stage_ends)
        if not ends or list(ends) != sorted(set(ends)) or ends[0] < 0:
            raise ValueError(f"stage ends must be increasing non-negative block indices, got {stage_ends}")
        self.stage_ends = ends
        needed = ends[-1]
        features = mobilenetv2_imagenet_features() if needed > 0 else nn.Sequential()
        starts = (0, *ends[:-1])
        self.stages = nn.ModuleList(features[a:b] for a, b in zip(starts, ends))
        for p in self.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.eval()

    def train(self, mode: bool = True) -> ImageNetStages:
        # Frozen BN statistics: the ImageNet running means, whatever the trainer's mode.
        return super().train(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = ((images.float() + 1.0) / 2.0 - self.mean) / self.std
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


def _mask_weight(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return 1.0 + F.interpolate(mask.float(), size=like.shape[-2:], mode="area")


class PerceptualLoss(nn.Module):
    """Mean over the stages of ``|f(pred) - f(target)| * (1 + mask)``, images in [-1, 1], mask (B, 1, H, W)."""

    def __init__(self, stage_ends: tuple[int, ...] = STAGE_ENDS) -> None:
        super().__init__()
        self.features = ImageNetStages(stage_ends)

    def train(self, mode: bool = True) -> PerceptualLoss:
        return super().train(False)

    def stage_loss(self, got: torch.Tensor, want: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """One stage's loss: ``weight`` is ``1 + mask`` at the stage's size, (B, 1, h, w)."""
        return ((got - want).abs() * weight).mean()

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self.features(target)
        total = pred.new_zeros((), dtype=torch.float32)
        for got, want in zip(self.features(pred), wanted):
            total = total + self.stage_loss(got, want, _mask_weight(mask, got))
        return total / len(wanted)


def nearest_neighbour_distance(pred: torch.Tensor, target: torch.Tensor, size: int = 3) -> torch.Tensor:
    """``(B, H, W)``: per position of ``pred`` (B, C, H, W), the smallest mean-over-channels L1 distance to
    ``target``'s vectors in the ``size x size`` window around the same position (edges replicated, so the
    border gets no free zero vectors)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"the neighbourhood must be an odd size >= 1, got {size}")
    b, c, h, w = target.shape
    r = size // 2
    padded = F.pad(target.float(), (r, r, r, r), mode="replicate") if r else target.float()
    pred = pred.float()
    best: torch.Tensor | None = None
    for dy in range(size):  # one shifted copy at a time: memory stays at two feature maps
        for dx in range(size):
            shifted = padded[:, :, dy : dy + h, dx : dx + w]
            distance = (pred - shifted).abs().mean(dim=1)
            best = distance if best is None else torch.minimum(best, distance)
    assert best is not None
    return best


class NearestNeighbourLoss(PerceptualLoss):
    """Mean over the stages of :func:`nearest_neighbour_distance` of output and target features, weighted by
    ``1 + mask`` (mask (B, 1, H, W), area-resized to each stage); images in [-1, 1]."""

    def __init__(self, stage_ends: tuple[int, ...] = (2, 4), size: int = 3) -> None:
        if size < 1 or size % 2 == 0:
            raise ValueError(f"the neighbourhood must be an odd size >= 1, got {size}")
        super().__init__(stage_ends)
        self.size = size

    def stage_loss(self, got: torch.Tensor, want: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return (nearest_neighbour_distance(got, want, self.size) * weight[:, 0]).mean()
