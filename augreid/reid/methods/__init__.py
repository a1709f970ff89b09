"""Re-ID training methods as plug-ins: one file each plus one line in ``_REGISTRY``.

A method decides the model head, the losses, the optimiser and schedule and
whether batches are P identities x K images, and owns its options (a dataclass,
``[reid.method_options]`` in a recipe). ``train-reid``, the settings loader,
checkpoint loading, evaluation and synth's identity filter only speak
:class:`augreid.reid.methods.base.ReidMethod`; the registry is the only list of
method names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from augreid.errors import ConfigError

if TYPE_CHECKING:
    from augreid.reid.methods.base import ReidMethod

# name -> "module:attribute", imported on first use.
_REGISTRY: dict[str, str | type[ReidMethod]] = {
    "softmax": "augreid.reid.methods.softmax:SoftmaxMethod",
    "triplet": "augreid.reid.methods.triplet:TripletMethod",
    "bot": "augreid.reid.methods.bot:BotMethod",
}


def register_method(name: str, target: str | type[ReidMethod]) -> None:
    _REGISTRY[name] = target


def method_names() -> list[str]:
    return sorted(_REGISTRY)


def unregister_method(name: str) -> None:
    _REGISTRY.pop(name, None)


def method_class(name: str) -> type[ReidMethod]:
    """The class registered as ``name`` (its module imported on first use)."""
    target = _REGISTRY.get(name)
    if target is None:
        raise ConfigError(f"unknown re-ID method {name!r}; known: {', '.join(method_names())}")
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
        _REGISTRY[name] = target
    return target


def get_method(name: str) -> ReidMethod:
    """A fresh instance of the method called ``name``."""
    return method_class(name)()


def method_of(info: dict) -> str:
    """The method a checkpoint was trained with; files from before methods existed record only ``loss``."""
    if info.get("method"):
        return str(info["method"])
    return "softmax" if (info.get("loss") or "softmax") == "softmax" else "triplet"
