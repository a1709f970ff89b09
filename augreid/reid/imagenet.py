"""Offline ImageNet weights for re-ID backbones (the weights file itself: ``augreid.imagenet``).

torchreid's ``mobilenetv2_x1_0`` differs from torchvision's network in one
place: its first bottleneck has a 1x1 expansion conv (``conv2.0.conv1``) that
torchvision's t=1 block omits. That conv is set to the identity (weight = eye,
BN scale 1, shift 0, running mean 0, running var ``1 - eps``) so that, in eval
mode, ``(x - 0) / sqrt(var + eps) = x`` exactly; the ReLU6 after it is the
identity too because its input already went through a ReLU6. Every other
tensor is assigned in order, checked by shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from augreid.errors import ConfigError
from augreid.imagenet import (
    DISTRIBUTION,
    DISTRIBUTION_VERSION,
    IMAGENET,
    INSTALL_HINT,
    SOURCE,
    WEIGHTS_MEMBER,
    ImageNetWeights,
    learned_tensors,
    assign_in_order,
    imagenet_weights,
    mobilenetv2_imagenet_features,
    source_state_dict,
)


def _set_identity_conv_block(block: Any) -> None:  # torchreid's modules are untyped
    """A torchreid ``ConvBlock`` (1x1 conv + BN) that passes its input through unchanged in eval mode."""
    conv, bn = block.conv, block.bn
    with torch.no_grad():
        conv.weight.copy_(torch.eye(conv.out_channels).reshape(conv.weight.shape))
        bn.weight.fill_(1.0)
        bn.bias.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)


def _is_head(key: str) -> bool:
    return key.startswith(("classifier.", "fc."))


def map_torchreid_mobilenetv2(model: nn.Module, source: dict[str, torch.Tensor]) -> list[str]:
    """torchreid ``mobilenetv2_x1_0`` <- the features file; returns every backbone key it set."""
    extra = "conv2.0.conv1."
    assigned = assign_in_order(model, source, lambda k: _is_head(k) or k.startswith(extra))
    net: Any = model  # torchreid's MobileNetV2: untyped attributes
    _set_identity_conv_block(net.conv2[0].conv1)
    return assigned + [k for k, _ in learned_tensors(model.state_dict()) if k.startswith(extra)]


# torchreid model name -> mapping of the offline file onto a freshly built model.
MAPPERS: dict[str, Callable[[nn.Module, dict[str, torch.Tensor]], list[str]]] = {
    "mobilenetv2_x1_0": map_torchreid_mobilenetv2
}


def models_with_imagenet() -> list[str]:
    return sorted(MAPPERS)


def has_imagenet(model_name: str) -> bool:
    return model_name in MAPPERS


def require_imagenet(model_name: str) -> None:
    if not has_imagenet(model_name):
        raise ConfigError(
            f"{model_name} has no offline ImageNet weights; models that have them: "
            f"{', '.join(models_with_imagenet())} (or pass --pretrained PATH / none)"
        )


def load_imagenet(model_name: str, model: nn.Module) -> ImageNetWeights:
    """Initialise a torchreid model's backbone with the offline ImageNet weights; return their provenance."""
    require_imagenet(model_name)
    MAPPERS[model_name](model, source_state_dict())
    return imagenet_weights()


__all__ = [
    "DISTRIBUTION",
    "DISTRIBUTION_VERSION",
    "IMAGENET",
    "INSTALL_HINT",
    "MAPPERS",
    "SOURCE",
    "WEIGHTS_MEMBER",
    "ImageNetWeights",
    "assign_in_order",
    "has_imagenet",
    "imagenet_weights",
    "load_imagenet",
    "map_torchreid_mobilenetv2",
    "mobilenetv2_imagenet_features",
    "models_with_imagenet",
    "require_imagenet",
    "source_state_dict",
]
