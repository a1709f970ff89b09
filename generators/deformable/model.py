"""Deformable GAN's generator (Siarohin et al., CVPR 2018) and an optional PatchGAN discriminator.

* Two encoders of ``model.levels`` levels (two 3x3 convolutions each, a stride-2
  convolution between levels, ReLU, no normalisation): the **appearance**
  encoder sees the condition image and its own pose maps, the **pose** encoder
  the target pose maps (and, with ``model.warp_input``, the training-free warp
  of the condition into the target pose).
* **Deformable skips** on the first ``model.deform_levels`` levels: the
  appearance features are moved once per body part by that part's affine map
  (``F.affine_grid`` / ``F.grid_sample``), multiplied by the part's mask in the
  target pose and combined by a maximum over the parts (:func:`deform`), so
  that each part's features arrive where the target pose puts the part. Deeper
  levels pass the appearance features unmoved (a code of the whole person).
* A **decoder** from the deepest level up: nearest upsampling, a 3x3
  convolution, concatenation with the level's deformed appearance and pose
  features, two 3x3 convolutions; a ``tanh`` image at the end.
* With ``model.warp_blend``, a fourth output channel ``m`` (a sigmoid) blends
  ``m * warp + (1 - m) * decoded``; it starts at ``sigmoid(model.blend_init)``
  everywhere, so training starts near the warp.

Images are ``(B, 3, H, W)`` in [-1, 1]; ``theta`` ``(B, P, 2, 3)`` and ``masks``
``(B, P, H, W)`` come from ``generators.deformable.geometry``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from generators.deformable.config import ModelConfig

NUM_POSE_CHANNELS = 18


def conv(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)


def deform(features: torch.Tensor, theta: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``features`` (B, C, h, w) moved once per part by ``theta`` (B, P, 2, 3; output -> input coordinates,
    ``align_corners=False``), each copy multiplied by its part's mask (B, P, H, W, area-resized to h x w), then
    the maximum over the parts: (B, C, h, w). Where no part's mask reaches, the result is 0."""
    b, c, h, w = features.shape
    p = theta.shape[1]
    # float32 throughout: bfloat16 sampling coordinates would be off by up to a pixel
    grid = F.affine_grid(theta.reshape(b * p, 2, 3).float(), [b * p, c, h, w], align_corners=False)
    copies = features.float().unsqueeze(1).expand(b, p, c, h, w).reshape(b * p, c, h, w)
    moved = F.grid_sample(copies, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    weight = masks.float() if masks.shape[-2:] == (h, w) else F.interpolate(masks.float(), size=(h, w), mode="area")
    return (moved.view(b, p, c, h, w) * weight.unsqueeze(2)).amax(dim=1).to(features.dtype)


class Encoder(nn.Module):
    """Returns each level's features, finest first; ReLU keeps them >= 0, so a masked-out copy (0) never wins
    :func:`deform`'s maximum over a part that is there."""

    def __init__(self, in_channels: int, channels: list[int]) -> None:
        super().__init__()
        levels = []
        cin = in_channels
        for i, cout in enumerate(channels):
            levels.append(
                nn.Sequential(conv(cin, cout, stride=1 if i == 0 else 2), nn.ReLU(), conv(cout, cout), nn.ReLU())
            )
            cin = cout
        self.levels = nn.ModuleList(levels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for level in self.levels:
            x = level(x)
            out.append(x)
        return out


class DeformableNet(nn.Module):
    """The generator network (see the module docstring)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        ch = cfg.channels
        self.deform_levels = cfg.deform_levels
        self.warp_input, self.warp_blend = cfg.warp_input, cfg.warp_blend
        self.appearance = Encoder(3 + NUM_POSE_CHANNELS, ch)
        self.pose = Encoder(NUM_POSE_CHANNELS + (3 if cfg.warp_input else 0), ch)
        self.bottleneck = nn.Sequential(conv(2 * ch[-1], ch[-1]), nn.ReLU())
        self.ups = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv(ch[i + 1], ch[i]), nn.ReLU())
            for i in range(len(ch) - 1)
        )
        self.merges = nn.ModuleList(
            nn.Sequential(conv(3 * ch[i], ch[i]), nn.ReLU(), conv(ch[i], ch[i]), nn.ReLU()) for i in range(len(ch) - 1)
        )
        self.out = conv(ch[0], 4 if cfg.warp_blend else 3)
        if cfg.warp_blend:  # the blend starts uniform, at sigmoid(blend_init), whatever the features
            with torch.no_grad():
                self.out.weight[3].zero_()
                assert self.out.bias is not None
                self.out.bias[3].fill_(cfg.blend_init)

    def forward(
        self,
        condition: torch.Tensor,
        condition_maps: torch.Tensor,
        target_maps: torch.Tensor,
        theta: torch.Tensor,
        masks: torch.Tensor,
        warped: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The condition person in the target pose, ``(B, 3, H, W)`` (unclamped within [-1, 1] by ``tanh``).
        ``warped`` (the condition warped into the target pose) is required with warp_input or warp_blend."""
        if (self.warp_input or self.warp_blend) and warped is None:
            raise ValueError("this generator was built with model.warp_input / warp_blend: it needs the warp")
        appearance = self.appearance(torch.cat([condition, condition_maps], dim=1))
        pose_in = [target_maps, warped] if self.warp_input and warped is not None else [target_maps]
        pose = self.pose(torch.cat(pose_in, dim=1))
        skips = [
            torch.cat([deform(a, theta, masks) if i < self.deform_levels else a, p], dim=1)
            for i, (a, p) in enumerate(zip(appearance, pose))
        ]
        x = self.bottleneck(skips[-1])
        for i in reversed(range(len(self.ups))):
            x = self.merges[i](torch.cat([self.ups[i](x), skips[i]], dim=1))
        out = self.out(x)
        decoded = torch.tanh(out[:, :3])
        if not self.warp_blend or warped is None:
            return decoded
        m = torch.sigmoid(out[:, 3:4])
        return m * warped.to(decoded.dtype) + (1.0 - m) * decoded


class PatchDiscriminator(nn.Module):
    """A PatchGAN on (condition, image): ``d_layers`` stride-2 4x4 convolutions (instance norm from the second),
    LeakyReLU 0.2, then one logit per patch."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 6
        for i in range(cfg.d_layers):
            cout = cfg.d_hidden * 2 ** min(i, 3)
            layers.append(nn.Conv2d(cin, cout, 4, stride=2, padding=1))
            if i > 0:
                layers.append(nn.InstanceNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2))
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, image], dim=1))


def count_parameters(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())
