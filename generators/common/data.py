"""Training data of a pose-guided generator: (condition, target) pairs with cached pose maps and masks.

Every image of the pairs is decoded once, and its target-pose maps and pose
mask are rendered once (for the flipped image too when flip augmentation is
on) before training starts; the training loop only indexes these arrays.
Disk pose maps are stored bit-packed (18 x H x W bits per image).

The order of batches is a pure function of ``(seed, step)`` (see
:class:`StepBatchSampler`), so resuming at step k replays exactly the batches
an uninterrupted run would have seen, without saving loader state.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from augreid.data import flip_pose, pose_mask, pose_maps, read_image
from augreid.data.pose import scale_pose
from augreid.data.market import ImageRecord
from augreid.errors import DatasetError, KeypointError
from augreid.progress import progress_bar
from generators.base import to_tensor_image
from generators.common.config import PoseConfig
from generators.common.warping import WarpConfig


def render_pose_maps(pose: np.ndarray, size: Sequence[int], cfg: PoseConfig) -> np.ndarray:
    """The 18 pose maps a generator is conditioned on: ``float32 (18, H, W)``."""
    return pose_maps(pose, (int(size[0]), int(size[1])), radius=cfg.radius, mode=cfg.map_mode, sigma=cfg.sigma)


def render_pose_mask(pose: np.ndarray, size: Sequence[int], cfg: PoseConfig) -> np.ndarray:
    """PG2's pose mask ``M_B`` (what the masked losses weight): ``float32 (H, W)`` in {0, 1}."""
    return pose_mask(pose, (int(size[0]), int(size[1])), radius=cfg.mask_radius)


def load_image(record_path, size: Sequence[int]) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 (H, W, 3) resized to ``size`` (bicubic) and the original (H, W)."""
    img = read_image(record_path)
    original = (img.height, img.width)
    h, w = int(size[0]), int(size[1])
    if original != (h, w):
        img = img.resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8), original


@dataclass
class ImageCache:
    """Decoded images with their rendered pose maps and masks, index = row."""

    names: list[str]
    images: np.ndarray  # uint8 (N, H, W, 3)
    maps: np.ndarray  # uint8 packed bits (N, V, 18*H*W/8) for disk maps, float32 (N, V, 18, H, W) otherwise
    masks: np.ndarray  # uint8 (N, V, H, W); V = 2 when the flipped versions are cached
    packed: bool
    poses: np.ndarray  # int32 (N, V, 18, 2) (y, x) in the cached images' coordinates

    @property
    def size(self) -> tuple[int, int]:
        return self.images.shape[1], self.images.shape[2]

    def pose_maps(self, row: int, flipped: bool) -> np.ndarray:
        h, w = self.size
        if self.packed:
            bits = np.unpackbits(self.maps[row, int(flipped)], count=18 * h * w)
            return bits.reshape(18, h, w).astype(np.float32)
        return self.maps[row, int(flipped)]

    def image(self, row: int, flipped: bool) -> np.ndarray:
        return self.images[row, :, ::-1] if flipped else self.images[row]

    def mask(self, row: int, flipped: bool) -> np.ndarray:
        return self.masks[row, int(flipped)].astype(np.float32)

    def pose(self, row: int, flipped: bool) -> np.ndarray:
        return self.poses[row, int(flipped)]


def build_image_cache(
    records: Mapping[str, ImageRecord],
    poses: Mapping[str, np.ndarray],
    names: Sequence[str],
    size: Sequence[int],
    cfg: PoseConfig,
    *,
    with_flip: bool,
    progress: bool = True,
) -> ImageCache:
    """Decode ``names`` and render their pose maps and masks once."""
    h, w = int(size[0]), int(size[1])
    variants = 2 if with_flip else 1
    packed = cfg.map_mode == "disk"
    n = len(names)
    images = np.empty((n, h, w, 3), np.uint8)
    if packed:
        maps = np.empty((n, variants, (18 * h * w + 7) // 8), np.uint8)
    else:
        maps = np.empty((n, variants, 18, h, w), np.float32)
    masks = np.empty((n, variants, h, w), np.uint8)
    cached_poses = np.empty((n, variants, 18, 2), np.int32)
    for row, name in enumerate(progress_bar(names, desc="caching images and poses", unit="img", disable=not progress)):
        if name not in records:
            raise DatasetError(f"image {name} named by a pair is not in the dataset")
        if name not in poses:
            raise KeypointError(f"image {name} has no keypoints")
        images[row], original = load_image(records[name].path, (h, w))
        pose = scale_pose(poses[name], original, (h, w))
        versions = [pose, flip_pose(pose, w)] if with_flip else [pose]
        for v, p in enumerate(versions):
            cached_poses[row, v] = p
            rendered = render_pose_maps(p, (h, w), cfg)
            maps[row, v] = np.packbits(rendered.astype(bool).ravel()) if packed else rendered
            masks[row, v] = render_pose_mask(p, (h, w), cfg)
    return ImageCache(list(names), images, maps, masks, packed, cached_poses)


class PairDataset(torch.utils.data.Dataset):
    """Item ``(pair_index, flipped)`` -> condition, target, target pose maps, target mask; with
    ``warp`` also the condition warped into the target pose by the training-free part warp (made here,
    per item, as synth makes it: caching it would take one more image per pair); with ``poses`` also
    both ``(18, 2)`` (y, x) poses and the condition's own pose maps and mask."""

    def __init__(self, cache: ImageCache, pairs: np.ndarray, warp: bool = False, poses: bool = False) -> None:
        self.cache = cache
        self.pairs = np.asarray(pairs, dtype=np.int64)  # (P, 2) rows of the cache
        # The warp generator's default settings: those a generator warps with at inference.
        self.warp = WarpConfig(image_size=cache.size) if warp else None
        self.poses = poses

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: tuple[int, bool]) -> dict[str, torch.Tensor]:
        index, flipped = key
        a, b = self.pairs[index]
        c = self.cache
        item = {
            "condition": to_tensor_image(c.image(a, flipped)),
            "target": to_tensor_image(c.image(b, flipped)),
            "target_maps": torch.from_numpy(c.pose_maps(b, flipped)),
            "target_mask": torch.from_numpy(c.mask(b, flipped))[None],
        }
        if self.warp is not None:
            warped, _ = self.warp.warp_image(c.image(a, flipped), c.pose(a, flipped), c.pose(b, flipped))
            item["warped"] = to_tensor_image(warped)
        if self.poses:
            item["condition_pose"] = torch.from_numpy(c.pose(a, flipped).astype(np.int64))
            item["target_pose"] = torch.from_numpy(c.pose(b, flipped).astype(np.int64))
            item["condition_maps"] = torch.from_numpy(c.pose_maps(a, flipped))
            item["condition_mask"] = torch.from_numpy(c.mask(a, flipped))[None]
        return item


class StepBatchSampler(torch.utils.data.Sampler):
    """Batches for steps ``start..end-1``; batch ``s`` depends only on ``(seed, s)``.

    The pair stream is the concatenation of per-epoch permutations drawn with
    ``numpy.random.default_rng([seed, epoch])`` (with a flip coin per pair when
    ``flip``). Global batch ``s`` is stream positions ``s*B .. s*B+B-1``; with
    ``world`` processes, rank ``r`` takes the r-th contiguous slice of it.
    """

    def __init__(
        self,
        num_pairs: int,
        batch_size: int,
        start: int,
        end: int,
        *,
        seed: int,
        flip: bool,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if num_pairs < 1:
            raise DatasetError("no training pairs")
        if batch_size % world:
            raise DatasetError(f"batch size {batch_size} is not divisible by the {world} processes")
        self.num_pairs, self.batch_size, self.start, self.end = num_pairs, batch_size, start, end
        self.seed, self.flip, self.rank, self.world = seed, flip, rank, world
        self._epoch_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if epoch not in self._epoch_cache:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(self.num_pairs)
            flips = rng.random(self.num_pairs) < 0.5 if self.flip else np.zeros(self.num_pairs, bool)
            self._epoch_cache = {epoch: (order, flips)}  # keep one epoch: memory stays flat
        return self._epoch_cache[epoch]

    def batch(self, step: int) -> list[tuple[int, bool]]:
        per_rank = self.batch_size // self.world
        first = step * self.batch_size + self.rank * per_rank
        out = []
        for position in range(first, first + per_rank):
            order, flips = self._epoch(position // self.num_pairs)
            i = position % self.num_pairs
            out.append((int(order[i]), bool(flips[i])))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, bool]]]:
        for step in range(self.start, self.end):
            yield self.batch(step)

    def __len__(self) -> int:
        return max(0, self.end - self.start)


def pair_rows(pairs: Sequence[tuple[str, str]]) -> tuple[list[str], np.ndarray]:
    """Unique image names of ``pairs`` (sorted) and the pairs as row indices into them."""
    names = sorted({n for pair in pairs for n in pair})
    index = {n: i for i, n in enumerate(names)}
    rows = np.array([(index[a], index[b]) for a, b in pairs], dtype=np.int64).reshape(-1, 2)
    return names, rows
