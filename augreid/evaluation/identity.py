"""Identity retention of generated images: do they still look like their person to a re-ID model?

Protocol: each synthetic image of a *training* identity is a query; the
gallery is every real training image of every training identity, minus that
query's own condition image (a copy of it would otherwise be a free match).
Features come from a re-ID model trained on those identities (loaded with
``augreid.reid.checkpoint.load_reid_model``), L2-normalised; the ranking is by
cosine distance, with no camera filtering (synthetic images have no real
camera). Reported: rank-1 and mAP (AP = mean precision at each true match).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from augreid.reid.checkpoint import load_reid_model
from augreid.synth.quality import IdentityScorer


@dataclass
class Gallery:
    """Real training images: L2-normalised features ``(M, D)``, pids ``(M,)`` and names."""

    features: torch.Tensor
    pids: np.ndarray
    names: list[str]


class ReidFeatures:
    """Features of ``(B, 3, H, W)`` images in [-1, 1] with a loaded re-ID model and its recorded input settings."""

    def __init__(self, model: torch.nn.Module, info: dict[str, Any], device: str = "cpu", batch_size: int = 64) -> None:
        self._scorer = IdentityScorer(model, info, device)
        self.batch_size = batch_size
        self.checkpoint = info.get("checkpoint")

    @classmethod
    def load(cls, path, device: str = "cpu") -> ReidFeatures:
        model, info = load_reid_model(path, device=device)
        return cls(model, info, device)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        parts = [self._scorer.features(images[i : i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        return torch.cat(parts).cpu()


def uint8_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` -> float ``(N, 3, H, W)`` in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def retrieval_scores(
    query: torch.Tensor, query_pids: np.ndarray, exclude: Sequence[int], gallery: Gallery
) -> dict[str, Any]:
    """rank-1 and mAP of normalised query features against the gallery; ``exclude[i]`` is the
    gallery row hidden from query ``i`` (its condition image), or -1 for none."""
    sim = (query.double() @ gallery.features.double().T).numpy()
    rows = np.arange(len(sim))
    excluded = np.asarray(exclude, dtype=np.int64)
    hidden = excluded >= 0
    sim[rows[hidden], excluded[hidden]] = -np.inf  # never ranked, and not counted below
    order = np.argsort(-sim, axis=1, kind="stable")
    matches = gallery.pids[order] == np.asarray(query_pids)[:, None]
    if hidden.any():
        removed = np.take_along_axis(sim, order, axis=1) == -np.inf
        matches &= ~removed
    has_match = matches.any(axis=1)
    hits = np.cumsum(matches, axis=1)
    precision = hits / np.arange(1, matches.shape[1] + 1)
    ap = np.where(has_match, (precision * matches).sum(1) / np.maximum(matches.sum(1), 1), np.nan)
    return {
        "rank1": float(matches[:, 0].mean()),
        "mAP": float(np.nanmean(ap)) if has_match.any() else float("nan"),
        "queries": int(len(sim)),
        "queries_without_match": int((~has_match).sum()),
    }


def build_gallery(records: Sequence[Any], load, features: ReidFeatures, batch_size: int = 256) -> Gallery:
    """Features of real images in batches (never all decoded at once); ``records`` have ``.path``,
    ``.pid`` and ``.name``, ``load(path)`` returns a uint8 ``(H, W, 3)`` image."""
    parts = []
    for start in range(0, len(records), batch_size):
        batch = np.stack([load(r.path) for r in records[start : start + batch_size]])
        parts.append(features(uint8_to_tensor(batch)))
    return Gallery(torch.cat(parts), np.asarray([r.pid for r in records], dtype=np.int64), [r.name for r in records])


def identity_retention(
    queries: dict[str, np.ndarray],
    query_pids: Sequence[int],
    condition_names: Sequence[str],
    gallery: Gallery,
    features: ReidFeatures,
) -> dict[str, Any]:
    """Scores per method; ``queries`` maps a method to uint8 ``(N, H, W, 3)`` images, one per condition."""
    row_of = {name: i for i, name in enumerate(gallery.names)}
    exclude = [row_of.get(name, -1) for name in condition_names]
    methods = {}
    for method, images in queries.items():
        methods[method] = retrieval_scores(features(uint8_to_tensor(images)), np.asarray(query_pids), exclude, gallery)
    return {
        "protocol": "synthetic images of training identities as queries; gallery = all real training images of all "
        "training identities minus each query's condition image; cosine distance, no camera filter",
        "reid_checkpoint": str(features.checkpoint) if features.checkpoint else None,
        "gallery_images": len(gallery.names),
        "gallery_identities": int(len(np.unique(gallery.pids))),
        "methods": methods,
    }


def markdown(section: dict[str, Any]) -> str:
    lines = [
        f"Identity retention: {section['protocol']} ({section['gallery_images']} images of "
        f"{section['gallery_identities']} identities).",
        "",
        "| method | rank-1 % ↑ | mAP % ↑ | queries |",
        "|---|---|---|---|",
    ]
    for method, m in section["methods"].items():
        lines.append(f"| {method} | {100 * m['rank1']:.1f} | {100 * m['mAP']:.1f} | {m['queries']} |")
    return "\n".join(lines)
