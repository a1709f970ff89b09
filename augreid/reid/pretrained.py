"""Where a re-ID backbone's initial weights come from: ``auto``, ``imagenet``, ``none`` or a local file.

``imagenet`` is the offline file of ``augreid.imagenet`` mapped onto a torchreid
model (:data:`MAPPERS`, one entry per model that has such weights).
torchreid's ``mobilenetv2_x1_0`` differs from torchvision's network in one
place: its first bottleneck has a 1x1 expansion conv (``conv2.0.conv1``) that
torchvision's t=1 block omits. That conv is set to the identity (weight = eye,
BN scale 1, shift 0, running mean 0, running var ``1 - eps``) so that, in eval
mode, ``(x - 0) / sqrt(var + eps) = x`` exactly; the ReLU6 after it is the
identity too because its input already went through a ReLU6. Every other
tensor is assigned in order, checked by shape.

Other backbones take ImageNet weights from torch's download cache, where the user
has them (:data:`HUB_FILES`): torchreid's ``resnet50`` uses the first of
``resnet50-19c8e357.pth`` (what torchreid itself fetches), ``resnet50-0676ba61.pth``
and ``resnet50-11ad3fa6.pth`` (torchvision's V1 and V2) found in
``$TORCH_HOME/hub/checkpoints/`` (``torch.hub.get_dir()``). Nothing is downloaded.
The file loads with ``weights_only=True`` and is mapped by name: every backbone
tensor of the torchreid model must come from it with the same shape, and only the
ImageNet classifier (``fc.*``) is left out. A file whose sha256 does not begin with
the hash in its name (torch hub's naming) is used with a note, and run.json says so.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchreid.reid.utils import load_pretrained_weights

from augreid.errors import ConfigError
from augreid.imagenet import IMAGENET, assign_in_order, imagenet_weights, learned_tensors, source_state_dict
from augreid.io import sha256_file

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
        if model_name in MAPPERS:
            imagenet_weights()  # the package is a dependency: missing, it is an install problem to report
            return IMAGENET
        if model_name in HUB_FILES:
            if find_hub_weights(model_name) is not None:
                return IMAGENET
            if announce:
                print(f"note: {missing_hub_weights(model_name)}; training from random weights", file=sys.stderr)
            return NONE
        if announce:
            print(
                f"note: {model_name} has no offline ImageNet weights (models that have them: "
                f"{', '.join(models_with_imagenet())}); training from random weights",
                file=sys.stderr,
            )
        return NONE
    if setting == IMAGENET:
        require_imagenet(model_name)
        if model_name in HUB_FILES:
            hub_weights_path(model_name)
        else:
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
        return load_imagenet(model_name, backbone)
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


# ---------------------------------------------------------------- ImageNet weights onto torchreid models


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


def map_torchreid_by_name(model: nn.Module, source: dict[str, torch.Tensor]) -> list[str]:
    """A torchreid model whose backbone has torchvision's tensor names (``resnet50``) <- a torchvision state dict.

    Every backbone tensor (all but the re-ID head ``classifier.*`` / ``fc.*``) must be
    in ``source`` with the same shape, and ``source`` may hold nothing else but its
    ImageNet classifier ``fc.*``; returns the keys set, in the model's order.
    """
    own = [(k, v) for k, v in learned_tensors(model.state_dict()) if not _is_head(k)]
    theirs = {k: v for k, v in learned_tensors(source) if not _is_head(k)}
    missing = [k for k, _ in own if k not in theirs]
    unused = sorted(set(theirs) - {k for k, _ in own})
    wrong = [
        f"{k} {tuple(v.shape)} != {tuple(theirs[k].shape)}"
        for k, v in own
        if k in theirs and v.shape != theirs[k].shape
    ]
    problems = [
        f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''} ({len(keys)})"
        for label, keys in (("missing in the file", missing), ("not in the model", unused), ("other shapes", wrong))
        if keys
    ]
    if problems:
        raise ConfigError("ImageNet mapping by name: " + "; ".join(problems))
    params = dict(model.state_dict(keep_vars=True))
    with torch.no_grad():
        for key, _ in own:
            params[key].copy_(theirs[key])
    return [k for k, _ in own]


# torchreid model name -> mapping of the offline file onto a freshly built model.
MAPPERS: dict[str, Callable[[nn.Module, dict[str, torch.Tensor]], list[str]]] = {
    "mobilenetv2_x1_0": map_torchreid_mobilenetv2
}
# torchreid model name -> files in torch's download cache it takes ImageNet weights from (first found wins),
# mapped by map_torchreid_by_name. resnet50-19c8e357.pth is torchreid's own download; the others torchvision's.
HUB_FILES: dict[str, tuple[str, ...]] = {
    "resnet50": ("resnet50-19c8e357.pth", "resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth")
}


def hub_checkpoint_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (``torch.hub.get_dir()``: ``~/.cache/torch/hub`` when unset)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_hub_weights(model_name: str) -> Path | None:
    """The first of ``HUB_FILES[model_name]`` present in the torch hub cache, or None."""
    folder = hub_checkpoint_dir()
    return next((folder / n for n in HUB_FILES.get(model_name, ()) if (folder / n).is_file()), None)


def missing_hub_weights(model_name: str) -> str:
    return (
        f"{model_name}: no ImageNet weights file; looked for {', '.join(HUB_FILES[model_name])} in "
        f"{hub_checkpoint_dir()} ($TORCH_HOME/hub/checkpoints, where torchreid and torchvision keep downloads; "
        "augreid never downloads)"
    )


def hub_weights_path(model_name: str) -> Path:
    """``find_hub_weights``, or a one-line ``ConfigError`` naming the files and the folder."""
    path = find_hub_weights(model_name)
    if path is None:
        raise ConfigError(missing_hub_weights(model_name) + "; or pass --pretrained PATH / none")
    return path


def read_hub_state(path: Path) -> dict[str, torch.Tensor]:
    """A torch hub weights file as a state dict (``weights_only=True``); one-line ``ConfigError`` otherwise."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unpickling failure means the same to the user: not a weights file
        raise ConfigError(f"ImageNet weights {path}: cannot be read ({type(err).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"ImageNet weights {path}: not a state dict of tensors")
    return dict(state)


def load_hub_imagenet(model_name: str, model: nn.Module) -> dict[str, Any]:
    """Map the torch hub cache's ImageNet weights onto ``model``; their provenance (no machine path)."""
    path = hub_weights_path(model_name)
    map_torchreid_by_name(model, read_hub_state(path))
    digest = sha256_file(path)
    named = re.search(r"-([0-9a-f]{8,})\.", path.name)
    matches = named is not None and digest.startswith(named.group(1))
    if not matches:
        print(
            f"note: {path.name}: its sha256 {digest[:12]}... does not begin with the hash in its name; "
            "not the published file, used as it is",
            file=sys.stderr,
        )
    return {
        "name": IMAGENET,
        "source": f"torch hub cache: {path.name} (ImageNet-1k {model_name})",
        "file": path.name,
        "sha256": digest,
        "sha256_matches_name": matches,
    }


def models_with_imagenet() -> list[str]:
    return sorted([*MAPPERS, *HUB_FILES])


def has_imagenet(model_name: str) -> bool:
    """Whether ``model_name`` has an ImageNet source (for ``HUB_FILES`` models a file the user may lack)."""
    return model_name in MAPPERS or model_name in HUB_FILES


def require_imagenet(model_name: str) -> None:
    if not has_imagenet(model_name):
        raise ConfigError(
            f"{model_name} has no offline ImageNet weights; models that have them: "
            f"{', '.join(models_with_imagenet())} (or pass --pretrained PATH / none)"
        )


def load_imagenet(model_name: str, model: nn.Module) -> dict[str, Any]:
    """Initialise a torchreid model's backbone with ImageNet weights; return their provenance for run.json."""
    require_imagenet(model_name)
    if model_name in HUB_FILES:
        return load_hub_imagenet(model_name, model)
    MAPPERS[model_name](model, source_state_dict())
    return imagenet_weights().provenance()
