"""Quality scores of generated images.

Pose agreement: the share of the image's foreground that lies inside the
target pose mask (PG2's limb mask, drawn thicker so that clothes fit in it).
Foreground is estimated without any segmentation model: the background of each
row is the median colour of the outermost ``border`` columns at both sides
(person crops are tall, so the sides are mostly background while the top and
bottom rows hold the head and feet), smoothed over rows with a median filter
so that an arm touching the side on a few rows does not count as background.
A pixel is foreground when its colour distance to its row's background
exceeds Otsu's threshold of those distances (and at least
``min_contrast``, so that a flat image has no foreground rather than noise).
An image with no foreground scores 0.

PCKh (MediaPipe), the default filter: the offline pose estimator runs on the
generated image and its joints are compared with the target pose at half the
head size (``augreid.pose_estimation.pckh`` defines the head size and which
joints count). Per image it is the share of the target's joints found where
they should be; an image in which no person is detected scores 0. The default
threshold, ``augreid.synth.config.DEFAULT_MIN_PCKH = 0.2``, is deliberately low: the estimator
misses joints on real low-resolution crops too, so the filter drops images that do not show
the target pose rather than images the estimator merely finds hard. Needs the ``[pose]``
extra; ``min_quality = {}`` (no filter) does not.

Identity agreement: cosine similarity between a re-ID model's feature of the
generated image and the centroid of the source identity's real training
images (L2-normalised features, averaged, normalised again).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.filters import threshold_otsu

from augreid.data.pose import pose_mask
from augreid.pose_estimation.base import EstimatorSpec
from augreid.synth.config import SCORES
from augreid.pose_estimation.pckh import HEAD_SIZE_DEFINITION, LABEL, default_estimator, score_pckh


def background_estimate(image: np.ndarray, border: int = 2) -> np.ndarray:
    """Per-row background colour ``(H, 3)`` float in [0, 1] of an ``(H, W, 3)`` uint8 image."""
    img = np.asarray(image, dtype=np.float32) / 255.0
    sides = np.concatenate([img[:, :border], img[:, -border:]], axis=1)
    rows = np.median(sides, axis=1)
    size = max(3, img.shape[0] // 8) | 1
    return ndimage.median_filter(rows, size=(size, 1), mode="nearest")


def foreground_mask(image: np.ndarray, *, border: int = 2, min_contrast: float = 0.08) -> np.ndarray:
    """Boolean ``(H, W)`` foreground of an ``(H, W, 3)`` uint8 image; see the module docstring."""
    img = np.asarray(image, dtype=np.float32) / 255.0
    background = background_estimate(image, border)
    distance = np.linalg.norm(img - background[:, None, :], axis=2) / np.sqrt(3.0)
    if float(distance.max() - distance.min()) < 1e-6:
        return np.zeros(distance.shape, dtype=bool)
    threshold = max(float(threshold_otsu(distance)), min_contrast)
    return distance > threshold


def pose_agreement(image: np.ndarray, target_mask: np.ndarray, *, border: int = 2, min_contrast: float = 0.08) -> float:
    """Share of the foreground of ``image`` inside ``target_mask`` (bool ``(H, W)``); 0 without foreground."""
    fg = foreground_mask(image, border=border, min_contrast=min_contrast)
    total = int(fg.sum())
    if total == 0:
        return 0.0
    return float((fg & np.asarray(target_mask, dtype=bool)).sum() / total)


def target_masks(poses: np.ndarray, shape: tuple[int, int], radius: float) -> np.ndarray:
    """Boolean pose masks ``(K, H, W)`` of the target poses."""
    return np.stack([pose_mask(p, shape, radius=radius) > 0 for p in poses]).astype(bool)


class TargetScores:
    """Per-image pose scores of a synth run: the target poses, their masks and, when
    the PCKh filter is on, one MediaPipe estimator per writer thread (MediaPipe
    graphs are not shared between threads)."""

    def __init__(self, poses: np.ndarray, shape: tuple[int, int], config) -> None:
        self.poses = np.asarray(poses)
        self.masks = target_masks(self.poses, shape, radius=max(1.0, config.mask_radius_fraction * shape[0]))
        self.border = config.border
        self.min_contrast = config.min_foreground_contrast
        self.with_pckh = "pckh" in config.min_quality
        self._local = threading.local()
        self._estimators: list = []
        self._lock = threading.Lock()
        if self.with_pckh:
            EstimatorSpec("mediapipe").check()  # fail before any image is generated

    def _estimator(self):
        est = getattr(self._local, "estimator", None)
        if est is None:
            est = self._local.estimator = default_estimator()
            with self._lock:
                self._estimators.append(est)
        return est

    def score(self, image: np.ndarray, target: int) -> dict[str, Any]:
        """``pose`` (mask agreement) and, with the PCKh filter, ``pckh`` and ``person_detected``."""
        quality: dict[str, Any] = {
            "pose": round(
                pose_agreement(image, self.masks[target], border=self.border, min_contrast=self.min_contrast), 4
            )
        }
        if self.with_pckh:
            estimate = self._estimator().estimate(np.asarray(image, dtype=np.uint8))
            per_image = score_pckh(estimate.pose[None], [estimate.detected], self.poses[target][None]).per_image[0]
            quality["pckh"] = None if math.isnan(per_image) else round(float(per_image), 4)
            quality["person_detected"] = bool(estimate.detected)
        return quality

    def close(self) -> None:
        for est in self._estimators:
            est.close()
        self._estimators.clear()


def failed_filters(quality: Mapping[str, Any], min_quality: Mapping[str, float]) -> list[str]:
    """Filters an image fails; a score that could not be computed (None) fails its filter."""
    return sorted(k for k, threshold in min_quality.items() if quality.get(k) is None or quality[k] < threshold)


def quality_summary(qualities: Sequence[Mapping[str, Any]], min_quality: Mapping[str, float]) -> dict[str, Any]:
    """Statistics of every score over all planned images (kept or not), as synth.json reports them."""
    out: dict[str, Any] = {}
    for name in SCORES:
        values = np.array([q[name] for q in qualities if q.get(name) is not None], dtype=np.float64)
        if len(values):
            out[name] = {
                "mean": round(float(values.mean()), 4),
                "median": round(float(np.median(values)), 4),
                "p10": round(float(np.percentile(values, 10)), 4),
                "min": round(float(values.min()), 4),
            }
    if "pckh" in out:
        detected = [bool(q.get("person_detected")) for q in qualities if "person_detected" in q]
        out["pckh"] = {
            "label": LABEL,
            **out["pckh"],
            "person_detected_rate": round(float(np.mean(detected)), 4) if detected else None,
            "threshold": min_quality.get("pckh"),
            "head_size": HEAD_SIZE_DEFINITION + " (mean/median: of the per-image share of target joints)",
        }
    return out


class IdentityScorer:
    """Cosine similarity of generated images to real-identity centroids, with a torchreid model.

    The model comes from ``augreid.reid.load_reid_model`` (run folder or
    checkpoint); its recorded input size and normalisation are used.
    """

    def __init__(self, model, info: dict, device) -> None:
        self.model = model
        self.device = torch.device(device)
        self.size = (int(info.get("height") or 256), int(info.get("width") or 128))
        self.mean = torch.tensor(info.get("norm_mean") or [0.485, 0.456, 0.406], device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(info.get("norm_std") or [0.229, 0.224, 0.225], device=self.device).view(1, 3, 1, 1)
        self.checkpoint = info.get("checkpoint")
        self.centroids: dict[int, torch.Tensor] = {}

    @classmethod
    def load(cls, path, device, load_reid) -> IdentityScorer:
        """``load_reid(path, device=...) -> (model, info)``: ``augreid.reid.load_reid_model``, passed in from above."""
        model, info = load_reid(path, device=str(device))
        return cls(model, info, device)

    def features(self, images):
        """L2-normalised features of images ``[B, 3, H, W]`` in [-1, 1]."""
        with torch.no_grad():
            x = (images.float().to(self.device) + 1.0) / 2.0
            if tuple(x.shape[-2:]) != self.size:
                x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
            out = self.model((x - self.mean) / self.std)
            if isinstance(out, (tuple, list)):
                out = out[-1] if out[-1].ndim == 2 else out[0]
            return F.normalize(out.float().flatten(1), dim=1)

    def add_centroids(self, images_by_pid: dict[int, list], load, batch_size: int = 64) -> None:
        """Centroid per pid from its real images; ``load(path)`` returns a ``[3, H, W]`` tensor in [-1, 1]."""
        for pid in sorted(images_by_pid):
            paths = images_by_pid[pid]
            feats = [
                self.features(torch.stack([load(p) for p in paths[i : i + batch_size]]))
                for i in range(0, len(paths), batch_size)
            ]
            self.centroids[pid] = F.normalize(torch.cat(feats).mean(0), dim=0)

    def score(self, images, pids: list[int]) -> list[float]:
        feats = self.features(images)
        centroids = torch.stack([self.centroids[p] for p in pids])
        return (feats * centroids).sum(1).tolist()
