"""PG2 networks (Ma et al., "Pose Guided Person Image Generation", NIPS 2017).

* ``G1``: U-Net-like generator. Input: condition image (3) + target pose maps (18).
  Encoder of N residual blocks (two 3x3 convs + identity skip), a stride-2 conv
  between blocks, channels ``hidden * (i + 1)``; a fully connected bottleneck to
  ``z_dim`` and back; a symmetric decoder that concatenates the encoder features,
  runs a residual block, then upsamples (nearest) and applies a 1x1 conv, as in
  the authors' code. No batch norm, no dropout.
* With ``model.warp_base``, G1 also sees the condition image warped part by part
  into the target pose (``generators.common.warping``) and outputs a correction of it: a
  colour difference ("residual") or a flow that resamples it ("flow"). Its last
  convolution starts at zero, so training starts from the warp itself.
* ``G2``: fully convolutional U-Net with N - 2 blocks; input = G1 output +
  condition image; output = a difference map, refined = G1 output + difference.
  Its last convolution starts at zero, so stage II starts from refined == G1.
* ``Discriminator``: DCGAN-style (5x5 stride-2 convs, LeakyReLU 0.2, batch norm
  from the second layer on, linear output) on (condition, image) pairs.

All three are resolution-generic: the image size only has to be divisible by
``2^(N-1)`` (and by ``2^d_layers`` for D).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from generators.pg2.config import ModelConfig

NUM_POSE_CHANNELS = 18
# The flow moves a pixel by at most FLOW_MAX pixels (about a limb's width at 128x64): the warp makes the
# large moves. Unbounded, pose-mask L1 against a misaligned target drives the flow to read one background
# pixel everywhere within 500 iterations (a flat image is L1's cheapest answer).
FLOW_MAX = 6.0
FLOW_CELL = 4  # the flow is smooth over cells of this many pixels (smooth_flow)


def _activation(name: str) -> nn.Module:
    return nn.ELU() if name == "elu" else nn.ReLU()


def conv(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions (each followed by the activation) plus an identity skip."""

    def __init__(self, channels: int, activation: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels), _activation(activation), conv(channels, channels), _activation(activation)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Encoder(nn.Module):
    """Stem conv, then ``blocks`` residual blocks with stride-2 convs in between.

    Returns the output of every residual block (the skips), finest first.
    """

    def __init__(self, in_channels: int, hidden: int, blocks: int, activation: str) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv(in_channels, hidden), _activation(activation))
        self.blocks = nn.ModuleList(ResidualBlock(hidden * (i + 1), activation) for i in range(blocks))
        self.downs = nn.ModuleList(
            nn.Sequential(conv(hidden * (i + 1), hidden * (i + 2), stride=2), _activation(activation))
            for i in range(blocks - 1)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        skips = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            skips.append(x)
            if i < len(self.downs):
                x = self.downs[i](x)
        return skips


class G1(nn.Module):
    """Stage-I generator: coarse image of the condition person in the target pose."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        n, hidden = cfg.blocks, cfg.hidden
        h, w = cfg.image_size
        self.bottom = (h // 2 ** (n - 1), w // 2 ** (n - 1))
        self.hidden = hidden
        bottom_pixels = self.bottom[0] * self.bottom[1]
        self.warp_base = cfg.warp_base
        extra = 0 if cfg.warp_base == "off" else 3
        self.encoder = Encoder(3 + NUM_POSE_CHANNELS + extra, hidden, n, cfg.activation)
        # No activation around the bottleneck: z is a linear code, as in the paper.
        self.fc_down = nn.Linear(hidden * n * bottom_pixels, cfg.z_dim)
        self.fc_up = nn.Linear(cfg.z_dim, hidden * bottom_pixels)
        self.dec_blocks = nn.ModuleList()
        self.ups = nn.ModuleList()
        channels = hidden
        for i in range(n):
            channels += hidden * (n - i)  # concatenated encoder skip
            self.dec_blocks.append(ResidualBlock(channels, cfg.activation))
            if i < n - 1:
                self.ups.append(
                    nn.Sequential(
                        nn.Upsample(scale_factor=2, mode="nearest"),
                        conv(channels, hidden * (n - i - 1), kernel=1),
                        _activation(cfg.activation),
                    )
                )
                channels = hidden * (n - i - 1)
        self.out = conv(channels, 2 if cfg.warp_base == "flow" else 3)
        if cfg.warp_base != "off":  # start from the warp: a correction of zero
            _zero(self.out)

    def forward(
        self, condition: torch.Tensor, target_maps: torch.Tensor, warped: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``warped``: the condition warped into the target pose; required with ``model.warp_base``, else unused."""
        inputs = [condition, target_maps]
        if self.warp_base != "off":
            if warped is None:
                raise ValueError("this G1 was built with model.warp_base: it needs the warped condition image")
            inputs.append(warped)
        skips = self.encoder(torch.cat(inputs, dim=1))
        z = self.fc_down(skips[-1].flatten(1))
        x = self.fc_up(z).view(-1, self.hidden, *self.bottom)
        for i, block in enumerate(self.dec_blocks):
            x = block(torch.cat([x, skips[-1 - i]], dim=1))
            if i < len(self.ups):
                x = self.ups[i](x)
        out = self.out(x)
        if warped is None or self.warp_base == "off":
            return out
        if self.warp_base == "residual":
            return warped + out
        return resample(warped, smooth_flow(FLOW_MAX * torch.tanh(out.float())))


def smooth_flow(flow: torch.Tensor) -> torch.Tensor:
    """The flow averaged over ``FLOW_CELL``-pixel cells and interpolated back: a per-pixel flow learns to
    shuffle pixels (a speckle that lowers L1 against a misaligned target); cells keep body parts whole."""
    h, w = flow.shape[-2:]
    coarse = F.avg_pool2d(flow.float(), FLOW_CELL, ceil_mode=True)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


def resample(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``image`` read at every pixel's position plus ``flow`` ``(B, 2, H, W)`` (dy, dx in pixels), bilinearly,
    in float32 (bfloat16 grid coordinates would be off by up to a pixel)."""
    b, _, h, w = image.shape
    ys = torch.linspace(-1.0, 1.0, h, device=image.device)
    xs = torch.linspace(-1.0, 1.0, w, device=image.device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    flow = flow.float()
    grid = torch.stack([grid_x + flow[:, 1] * (2.0 / max(w - 1, 1)), grid_y + flow[:, 0] * (2.0 / max(h - 1, 1))], -1)
    return F.grid_sample(image.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)


class G2(nn.Module):
    """Stage-II generator: a difference map that sharpens G1's output."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        n, hidden = cfg.blocks - 2, cfg.g2_hidden
        self.encoder = Encoder(6, hidden, n, cfg.activation)
        self.dec_blocks = nn.ModuleList()
        channels = hidden * n
        for i in range(n):
            cin = channels + hidden * (n - i)
            self.dec_blocks.append(
                nn.Sequential(
                    conv(cin, hidden), _activation(cfg.activation), conv(hidden, hidden), _activation(cfg.activation)
                )
            )
            channels = hidden
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.out = conv(hidden, 3)
        # Zero difference map at the start of stage II: refined == G1 output, and G2 learns a
        # correction from there instead of first undoing random noise (our choice, not the paper's).
        _zero(self.out)

    def forward(self, g1_image: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        skips = self.encoder(torch.cat([g1_image, condition], dim=1))
        x = skips[-1]
        for i, block in enumerate(self.dec_blocks):
            x = block(torch.cat([x, skips[-1 - i]], dim=1))
            if i < len(self.dec_blocks) - 1:
                x = self.up(x)
        return self.out(x)


def _zero(layer: nn.Conv2d) -> None:
    nn.init.zeros_(layer.weight)
    assert layer.bias is not None  # conv() makes biased convolutions
    nn.init.zeros_(layer.bias)


def norm_layer(kind: str, channels: int) -> nn.Module:
    # Instance norm without affine parameters, as pix2pixHD's discriminators use it.
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.InstanceNorm2d(channels, affine=False)


class Discriminator(nn.Module):
    """DCGAN discriminator on a (condition, image) pair; returns one logit per pair."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 6
        for i in range(cfg.d_layers):
            cout = cfg.d_hidden * 2**i
            layers.append(nn.Conv2d(cin, cout, 5, stride=2, padding=2, bias=i == 0 or cfg.d_norm != "batch"))
            if i > 0 and cfg.d_norm != "none":
                layers.append(norm_layer(cfg.d_norm, cout))
            layers.append(nn.LeakyReLU(0.2))
            cin = cout
        self.features = nn.Sequential(*layers)
        h, w = cfg.image_size
        self.out = nn.Linear(cin * (h // 2**cfg.d_layers) * (w // 2**cfg.d_layers), 1)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(torch.cat([condition, image], dim=1)).flatten(1)).squeeze(1)


class PG2(nn.Module):
    """The two generators; ``g2`` is ``None`` for a stage-I-only model."""

    def __init__(self, cfg: ModelConfig, with_g2: bool = True) -> None:
        super().__init__()
        self.g1 = G1(cfg)
        self.g2 = G2(cfg) if with_g2 else None

    def forward(
        self, condition: torch.Tensor, target_maps: torch.Tensor, warped: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        coarse = self.g1(condition, target_maps, warped)
        if self.g2 is None:
            return coarse, None
        return coarse, coarse + self.g2(coarse, condition)


def count_parameters(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())
