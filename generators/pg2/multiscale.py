"""A pix2pixHD-style stage II for PG2 (Wang et al., "High-Resolution Image Synthesis
and Semantic Manipulation with Conditional GANs", CVPR 2018): multi-scale
PatchGAN discriminators on (condition, image) pairs and a feature-matching loss.

``MultiScaleDiscriminator`` runs ``d_scales`` PatchGANs with the same layout
but their own weights on the pair at scales 1, 1/2, 1/4, ... (3x3 average
pooling, stride 2, padding not counted, as in pix2pixHD). Each PatchGAN is
4x4 convolutions (stride 2 for the first ``d_layers``, then two stride-1
ones), LeakyReLU 0.2 and a normalisation from the second layer on; it returns
the output of every layer, the last being the patch logits.

Every stage-II discriminator's output is handled as *scales x layers*: the
DCGAN discriminator is one scale with one layer (its logits), so the loss
functions below serve both, and with ``bce`` on the DCGAN discriminator they
reduce exactly to PG2's original losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from generators.pg2.config import ModelConfig
from generators.pg2.model import Discriminator, norm_layer

Outputs = list[list[torch.Tensor]]  # [scale][layer] -> (B, C, h, w) or (B,) logits


class PatchDiscriminator(nn.Module):
    """pix2pixHD's NLayerDiscriminator on a 6-channel (condition, image) pair."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        hidden, layers = cfg.d_hidden, cfg.d_layers
        self.blocks = nn.ModuleList([nn.Sequential(nn.Conv2d(6, hidden, 4, stride=2, padding=2), nn.LeakyReLU(0.2))])
        channels = hidden
        for i in range(1, layers + 1):
            out = min(hidden * 2**i, 512)
            stride = 2 if i < layers else 1
            body: list[nn.Module] = [nn.Conv2d(channels, out, 4, stride=stride, padding=2, bias=cfg.d_norm != "batch")]
            if cfg.d_norm != "none":
                body.append(norm_layer(cfg.d_norm, out))
            self.blocks.append(nn.Sequential(*body, nn.LeakyReLU(0.2)))
            channels = out
        self.blocks.append(nn.Sequential(nn.Conv2d(channels, 1, 4, stride=1, padding=2)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features


class MultiScaleDiscriminator(nn.Module):
    """``d_scales`` PatchGANs on the pair at scales 1, 1/2, 1/4, ...; returns ``[scale][layer]``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(cfg) for _ in range(cfg.d_scales))
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> Outputs:
        x = torch.cat([condition, image], dim=1)
        outputs = []
        for i, disc in enumerate(self.scales):
            if i:
                x = self.down(x)
            outputs.append(disc(x))
        return outputs


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    return MultiScaleDiscriminator(cfg) if cfg.d_type == "multiscale" else Discriminator(cfg)


def as_scales(output: torch.Tensor | Outputs) -> Outputs:
    """Any stage-II discriminator's output as ``[scale][layer]``, in float32."""
    if isinstance(output, torch.Tensor):
        return [[output.float()]]
    return [[layer.float() for layer in scale] for scale in output]


def split_real_fake(output: torch.Tensor | Outputs) -> tuple[Outputs, Outputs]:
    """Outputs on a ``[real; fake]`` batch -> (real outputs, fake outputs)."""
    scales = as_scales(output)
    real = [[layer.chunk(2)[0] for layer in scale] for scale in scales]
    fake = [[layer.chunk(2)[1] for layer in scale] for scale in scales]
    return real, fake


def _d_term(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "lsgan":
        return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())
    if kind == "hinge":
        return 0.5 * (F.relu(1 - real).mean() + F.relu(1 + fake).mean())
    return 0.5 * (
        F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
        + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    )


def _g_term(fake: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "lsgan":
        return (fake - 1).pow(2).mean()
    if kind == "hinge":
        return -fake.mean()
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def discriminator_loss(real: Outputs, fake: Outputs, kind: str) -> torch.Tensor:
    """Mean over scales of the ``kind`` loss on each scale's last layer (its logits)."""
    return torch.stack([_d_term(r[-1], f[-1], kind) for r, f in zip(real, fake)]).mean()


def generator_adversarial(fake: Outputs, kind: str) -> torch.Tensor:
    return torch.stack([_g_term(f[-1], kind) for f in fake]).mean()


def feature_matching(fake: Outputs, real: Outputs) -> torch.Tensor:
    """Mean over scales of the mean over *every* layer (patch logits included) of
    ``|D_l(fake) - D_l(real)|``; the real features are constants (no gradient into D
    or through the real branch). pix2pixHD weights layers the same way up to a
    constant but skips the logits; we keep them, so a fake that fools D layer by
    layer is also matched on the final patch scores."""
    per_scale = [
        torch.stack([(f - r.detach()).abs().mean() for f, r in zip(fs, rs)]).mean() for fs, rs in zip(fake, real)
    ]
    return torch.stack(per_scale).mean()


def realness(outputs: Outputs, kind: str) -> torch.Tensor:
    """A logged summary of D's verdict: sigmoid probability for bce, the raw mean score otherwise."""
    last = torch.cat([scale[-1].flatten() for scale in outputs])
    return torch.sigmoid(last).mean() if kind == "bce" else last.mean()
