"""torchreid's model zoo, imported quietly and never downloading."""

from __future__ import annotations

import torchreid.reid.models as torchreid_models
from torch import nn

from augreid.errors import ConfigError

# torchreid's "Cython evaluation unavailable" import warning is silenced once, in augreid/reid/__init__.py.


def import_torchreid_models():
    """torchreid's model zoo module (for callers that need its factory)."""
    return torchreid_models


def model_names() -> list[str]:
    """Every model name torchreid's ``build_model`` knows."""
    return list(getattr(torchreid_models, "__model_factory").keys())


def check_model_name(name: str) -> str:
    names = model_names()
    if name not in names:
        raise ConfigError(f"unknown model {name!r}: torchreid knows {', '.join(names)}")
    return name


def build_torchreid_model(name: str, num_classes: int, head: str = "softmax") -> nn.Module:
    """A torchreid model with random weights (``pretrained=False``: nothing is downloaded).

    ``head`` is torchreid's ``loss`` argument: ``softmax`` models return logits in
    train mode, ``triplet`` models ``(logits, features)``.
    """
    check_model_name(name)
    return torchreid_models.build_model(name, num_classes=int(num_classes), loss=head, pretrained=False, use_gpu=False)
