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

Identity agreement: cosine similarity between a re-ID model's feature of the
generated image and the centroid of the source identity's real training
images (L2-normalised features, averaged, normalised again).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def background_estimate(image: np.ndarray, border: int = 2) -> np.ndarray:
    """Per-row background colour ``(H, 3)`` float in [0, 1] of an ``(H, W, 3)`` uint8 image."""
    img = np.asarray(image, dtype=np.float32) / 255.0
    sides = np.concatenate([img[:, :border], img[:, -border:]], axis=1)
    rows = np.median(sides, axis=1)
    size = max(3, img.shape[0] // 8) | 1
    return ndimage.median_filter(rows, size=(size, 1), mode="nearest")


def foreground_mask(image: np.ndarray, *, border: int = 2, min_contrast: float = 0.08) -> np.ndarray:
    """Boolean ``(H, W)`` foreground of an ``(H, W, 3)`` uint8 image; see the module docstring."""
    from skimage.filters import threshold_otsu

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
    from augreid.data.pose import pose_mask

    return np.stack([pose_mask(p, shape, radius=radius) > 0 for p in poses]).astype(bool)


class IdentityScorer:
    """Cosine similarity of generated images to real-identity centroids, with a torchreid model.

    The model comes from ``augreid.reid.load_reid_model`` (run folder or
    checkpoint); its recorded input size and normalisation are used.
    """

    def __init__(self, model, info: dict, device) -> None:
        import torch

        self.model = model
        self.device = torch.device(device)
        self.size = (int(info.get("height") or 256), int(info.get("width") or 128))
        self.mean = torch.tensor(info.get("norm_mean") or [0.485, 0.456, 0.406], device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(info.get("norm_std") or [0.229, 0.224, 0.225], device=self.device).view(1, 3, 1, 1)
        self.checkpoint = info.get("checkpoint")
        self.centroids: dict[int, "torch.Tensor"] = {}

    @classmethod
    def load(cls, path, device) -> "IdentityScorer":
        from augreid.reid import load_reid_model

        model, info = load_reid_model(path, device=str(device))
        return cls(model, info, device)

    def features(self, images):
        """L2-normalised features of images ``[B, 3, H, W]`` in [-1, 1]."""
        import torch
        import torch.nn.functional as F

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
        import torch
        import torch.nn.functional as F

        for pid in sorted(images_by_pid):
            paths = images_by_pid[pid]
            feats = [self.features(torch.stack([load(p) for p in paths[i : i + batch_size]])) for i in range(0, len(paths), batch_size)]
            self.centroids[pid] = F.normalize(torch.cat(feats).mean(0), dim=0)

    def score(self, images, pids: list[int]) -> list[float]:
        import torch

        feats = self.features(images)
        centroids = torch.stack([self.centroids[p] for p in pids])
        return (feats * centroids).sum(1).tolist()
