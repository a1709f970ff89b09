"""Re-ID training methods as plug-ins: one file each plus one line in ``_REGISTRY``.

A method decides the model head, the losses, the optimiser and schedule and
whether batches are P identities x K images, and owns its options (a dataclass,
``[reid.method_options]`` in a recipe). ``train-reid``, the settings loader,
checkpoint loading, evaluation and synth's identity filter only speak
:class:`augreid.reid.methods.base.ReidMethod`; the registry is the only list of
method names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from augreid.registry import Registry

if TYPE_CHECKING:
    from augreid.reid.methods.base import ReidMethod

# name -> "module:attribute", imported on first use.
_REGISTRY: dict[str, str | type[ReidMethod]] = {
    "softmax": "augreid.reid.methods.softmax:SoftmaxMethod",
    "triplet": "augreid.reid.methods.triplet:TripletMethod",
    "bot": "augreid.reid.methods.bot:BotMethod",
}
_METHODS: Registry[type[ReidMethod]] = Registry("re-ID method", _REGISTRY)


def register_method(name: str, target: str | type[ReidMethod]) -> None:
    _METHODS.register(name, target)


def method_names() -> list[str]:
    return _METHODS.names()


def unregister_method(name: str) -> None:
    _METHODS.unregister(name)


def method_class(name: str) -> type[ReidMethod]:
    """The class registered as ``name`` (its module imported on first use)."""
    return _METHODS.get(name)


def get_method(name: str) -> ReidMethod:
    """A fresh instance of the method called ``name``."""
    return method_class(name)()


def method_of(info: dict) -> str:
    """The method a checkpoint was trained with; files from before methods existed record only ``loss``."""
    if info.get("method"):
        return str(info["method"])
    return "softmax" if (info.get("loss") or "softmax") == "softmax" else "triplet"
