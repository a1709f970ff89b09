"""Realism of generated images, offline: "FID-MNv2" and KID on ImageNet MobileNetV2 features.

Features are the 1280-d global-average-pooled output of torchvision's
``mobilenet_v2().features`` with the offline ImageNet weights
(``augreid.imagenet.mobilenetv2_imagenet_features``), on images resized
to ``FEATURE_SIZE`` and ImageNet-normalised. On them:

* the Frechet distance between Gaussians fitted to two feature sets
  (``|mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2))``), reported as
  ``FID-MNv2``. It is **not** FID: FID is defined on Inception-v3 pool features,
  and these values are not comparable with any published Inception FID;
* KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial
  kernel ``(x.y / d + 1)^3``, averaged over random subsets (mean and std).

Both depend on the sample sizes (the Frechet distance is biased upwards for
small sets, KID is not), so a floor is reported with every score: the same
measure between two disjoint sets of *real* images (see ``realism_scores``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from augreid.imagenet import IMAGENET_MEAN, IMAGENET_STD, mobilenetv2_imagenet_features

NAME = "FID-MNv2"
DISCLAIMER = (
    "FID-MNv2 is the Frechet distance on ImageNet MobileNetV2 pooled features (1280-d), not on Inception-v3: "
    "it is not comparable with Inception FID values"
)
FEATURE_SIZE = (256, 128)  # H, W: person crops upsampled 2x from 128x64 (MobileNetV2 has stride 32)

FeatureNet = torch.nn.Module  # (N, 3, H, W) ImageNet-normalised -> (N, C, h, w)


def default_feature_net() -> FeatureNet:
    """Offline ImageNet MobileNetV2 features (``augreid.imagenet``; ConfigError when the weights are missing)."""
    return mobilenetv2_imagenet_features()


@torch.no_grad()
def image_features(
    images: np.ndarray,
    net: FeatureNet,
    *,
    size: tuple[int, int] = FEATURE_SIZE,
    batch_size: int = 64,
    device: str = "cpu",
) -> np.ndarray:
    """Pooled features ``float64 (N, C)`` of uint8 images ``(N, H, W, 3)``."""
    net = net.to(device).eval()
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    out = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).to(device)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        feats = net((x - mean) / std)
        out.append(feats.float().mean(dim=(2, 3)) if feats.ndim == 4 else feats.float().flatten(1))
    return torch.cat(out).double().cpu().numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature rows ``a`` and ``b`` (sample covariances).

    ``tr((C_a C_b)^(1/2))`` is the sum of the singular values of ``X_a X_b^T / sqrt((n_a - 1)(n_b - 1))``
    (``X`` the centred rows): the non-zero eigenvalues of ``C_a C_b`` are those of
    ``(X_a X_b^T)(X_a X_b^T)^T`` up to that factor. This is exact, needs no matrix square
    root, and stays stable when there are fewer images than feature dimensions.
    """
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Frechet distance needs at least 2 samples per set")
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    xa, xb = a - a.mean(0), b - b.mean(0)
    na, nb = len(a) - 1, len(b) - 1
    trace_root = float(np.linalg.svd(xa @ xb.T / np.sqrt(na * nb), compute_uv=False).sum())
    mean_term = float(((a.mean(0) - b.mean(0)) ** 2).sum())
    value = mean_term + float((xa**2).sum()) / na + float((xb**2).sum()) / nb - 2.0 * trace_root
    return max(value, 0.0)


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2.0 * kxy.mean()
    )


def kernel_inception_distance(
    a: np.ndarray, b: np.ndarray, *, subsets: int = 50, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID (mean, std over ``subsets`` random subsets of ``min(subset_size, |a|, |b|)`` rows each)."""
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError("KID needs at least 2 samples per set")
    rng = np.random.default_rng(seed)
    values = [
        _mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


def compare_features(a: np.ndarray, b: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    kid, kid_std = kernel_inception_distance(a, b, seed=seed)
    return {
        "fid_mnv2": frechet_distance(a, b),
        "kid": kid,
        "kid_std": kid_std,
        "n": int(len(a)),
        "n_reference": int(len(b)),
    }


def realism_scores(
    images: dict[str, np.ndarray],
    real_a: np.ndarray,
    real_b: np.ndarray,
    *,
    net: FeatureNet | None = None,
    device: str = "cpu",
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Scores of every method's images against the real reference set ``real_b``.

    The floor is ``real_a`` (disjoint real images, sub-sampled to the size of the
    largest generated set so that the Frechet distance's small-sample bias is the
    same) against the same ``real_b``: a generator cannot be expected to beat it.
    """
    net = default_feature_net() if net is None else net
    say = progress or (lambda _msg: None)
    say(f"{NAME}: features of {len(real_b)} + {len(real_a)} real images")
    ref = image_features(real_b, net, device=device)
    n = max(len(v) for v in images.values())
    picks = np.sort(np.random.default_rng(seed).choice(len(real_a), min(n, len(real_a)), replace=False))
    floor = compare_features(image_features(real_a[picks], net, device=device), ref, seed=seed)
    methods = {}
    for name, batch in images.items():
        say(f"{NAME}: {name}")
        methods[name] = compare_features(image_features(batch, net, device=device), ref, seed=seed)
    return {
        "name": NAME,
        "disclaimer": DISCLAIMER,
        "features": f"torchvision mobilenet_v2().features, offline ImageNet weights, global average pool, input {FEATURE_SIZE[0]}x{FEATURE_SIZE[1]}",
        "kid_kernel": "(x.y / 1280 + 1)^3, unbiased MMD^2, mean/std over 50 subsets",
        "floor_real_vs_real": floor,
        "methods": methods,
    }


def markdown(section: dict[str, Any]) -> str:
    """A table of one realism section, the disclaimer first."""
    lines = [
        f"Realism: {section['name']} and KID x 1000 against {section['floor_real_vs_real']['n_reference']} real images "
        f"({section.get('reference', 'real images')}). **{section['disclaimer']}.**",
        "",
        f"| method | {section['name']} ↓ | KID x 1000 ↓ | images |",
        "|---|---|---|---|",
    ]
    rows = [*section["methods"].items(), ("real vs real (floor)", section["floor_real_vs_real"])]
    for method, m in rows:
        lines.append(
            f"| {method} | {m['fid_mnv2']:.2f} | {1000 * m['kid']:.2f} ± {1000 * m['kid_std']:.2f} | {m['n']} |"
        )
    return "\n".join(lines)
