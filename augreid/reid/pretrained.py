"""Where a re-ID backbone's initial weights come from: ``auto``, ``imagenet``, ``none`` or a local file."""

from __future__ import annotations

import contextlib
import io
import pickle
import sys
import warnings
from pathlib import Path
from typing import Any

from torch import nn
from torchreid.reid.utils import load_pretrained_weights

from augreid.errors import ConfigError
from augreid.io import sha256_file
from augreid.reid.imagenet import (
    IMAGENET,
    has_imagenet,
    imagenet_weights,
    load_imagenet,
    models_with_imagenet,
    require_imagenet,
)

AUTO, NONE = "auto", "none"
NAMES = (AUTO, IMAGENET, NONE)


def resolve_pretrained(setting: str | None, model_name: str, announce: bool = True) -> str:
    """``imagenet``, ``none`` or a path: what ``setting`` means for ``model_name`` (checked, nothing loaded).

    ``auto`` takes the offline ImageNet weights where the model has them and
    otherwise trains from random weights, saying so in one line.
    """
    if setting in (None, NONE):
        return NONE
    if setting == AUTO:
        if has_imagenet(model_name):
            imagenet_weights()  # the package is a dependency: missing, it is an install problem to report
            return IMAGENET
        if announce:
            print(
                f"note: {model_name} has no offline ImageNet weights (models that have them: "
                f"{', '.join(models_with_imagenet())}); training from random weights",
                file=sys.stderr,
            )
        return NONE
    if setting == IMAGENET:
        require_imagenet(model_name)
        imagenet_weights()
        return IMAGENET
    if not Path(setting).expanduser().is_file():
        raise ConfigError(
            f"pretrained weights {setting} not found (augreid never downloads weights; names: {', '.join(NAMES)})"
        )
    return setting


def initialise(backbone: nn.Module, model_name: str, choice: str) -> dict[str, Any] | None:
    """Load ``choice`` (from ``resolve_pretrained``) into ``backbone``; return its provenance for run.json."""
    if choice == NONE:
        return None
    if choice == IMAGENET:
        return load_imagenet(model_name, backbone).provenance()
    load_weights_file(backbone, choice)
    return {"name": "file", "file": Path(choice).name, "sha256": sha256_file(Path(choice).expanduser())}


def load_weights_file(model: nn.Module, path: str) -> None:
    """Local weights through torchreid's ``load_pretrained_weights``; no matching layer is an error."""
    # torchreid prints its own "Unable to load checkpoint" before raising; the error below says it once.
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always")
        try:
            load_pretrained_weights(model, str(Path(path).expanduser()))
        except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, ValueError, TypeError, AttributeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise ConfigError(
                f"pretrained weights {path}: cannot be read, not a PyTorch weights file "
                f"({type(err).__name__} {first})".rstrip()
            ) from None
    if any("cannot be loaded" in str(w.message) for w in caught):
        raise ConfigError(f"pretrained weights {path}: no layer matches the model; wrong architecture?")
