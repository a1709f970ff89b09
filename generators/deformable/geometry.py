"""The body parts of the deformable skip connections: per part an affine map target -> source and a mask.

Ten rigid parts (Siarohin et al. 2018): torso, head, and the upper and lower
segment of each arm and leg. For a (source, target) pair of OpenPose-18 poses
(``(18, 2)`` (y, x), -1 = missing):

* the **torso** map is the least-squares affine map of its joints (neck,
  shoulders, hips) present in both poses, target -> source; with fewer than
  three such joints, or joints too close to a line to fix a shear, the
  rotation + scale + shift that fits them best (``common.parts.similarity``);
* the **head** map is the similarity fitted to the face joints and the neck
  present in both (a plain shift at the body's scale from a single joint);
* a **limb** segment's map takes the target segment onto the source segment,
  stretched along it by the ratio of the lengths and scaled across it by the
  body's scale (``common.parts.segment_map``), so that it keeps its width. A limb
  the source pose lacks is taken from its mirror limb (right for left), which
  the clothing usually matches.

A part's **mask** is drawn in the target pose (a grown hull for the torso, a
disk for the head, thick segments for the limbs, sized by the target's torso
length as ``common.parts.PartWidths`` says); a part missing from the target, or
with nothing to map it from in the source, gets an empty mask and an identity map.

:func:`normalised_theta` turns pixel maps into ``F.affine_grid`` matrices
(``align_corners=False``): in those coordinates a pixel centre and the centre of
the feature cell that covers it coincide at every stride, so one matrix serves
every encoder level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from augreid.data.keypoints import KP, visible
from generators.common.parts import (
    ARMS,
    HEAD,
    LEGS,
    TORSO,
    PartWidths,
    disk_mask,
    hull_mask,
    joints_xy,
    line_mask,
    segment_map,
    similarity,
    torso_length,
)

LIMBS = ARMS + LEGS
PART_NAMES: tuple[str, ...] = ("torso", "head", *(f"{a}-{b}" for a, b in LIMBS))
NUM_PARTS = len(PART_NAMES)
EXTREMITIES = ("Rwri", "Lwri", "Rank", "Lank")  # forearms and shins reach past these (hands, shoes)
# Three or more torso joints fix an affine map only when they span a plane: below this ratio of the
# smaller to the larger spread (joints nearly on a line, e.g. neck and shoulders only) the shear and
# the scale across the line are noise, and a similarity is fitted instead.
MIN_SPREAD_RATIO = 0.2
MAX_ANISOTROPY = 4.0  # a fitted affine map stretching one direction 4x more than the other is not a body


@dataclass
class PartMaps:
    """Per part (``PART_NAMES`` order): the 2x3 map target (x, y) -> source (x, y), whether it exists, and
    whether it was taken from the mirror limb."""

    to_source: np.ndarray  # float64 (P, 2, 3); the identity where not valid
    valid: np.ndarray  # bool (P,)
    mirrored: np.ndarray  # bool (P,)


def _mirror(name: str) -> str:
    return {"R": "L", "L": "R"}[name[0]] + name[1:]


def _identity() -> np.ndarray:
    return np.hstack([np.eye(2), np.zeros((2, 1))])


def least_squares_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 affine map taking (x, y) points ``src`` onto ``dst`` with the least squared error, or the best
    similarity where the points cannot fix an affine map (fewer than three, nearly collinear, or a fit that
    stretches one direction far more than the other)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if len(src) >= 3:
        spread = np.linalg.svd(src - src.mean(0), compute_uv=False)
        if spread[0] > 0 and spread[1] / spread[0] >= MIN_SPREAD_RATIO:
            design = np.hstack([src, np.ones((len(src), 1))])
            solution, *_ = np.linalg.lstsq(design, dst, rcond=None)
            fitted = solution.T  # (2, 3)
            scales = np.linalg.svd(fitted[:, :2], compute_uv=False)
            if scales[1] > 1e-6 and scales[0] / scales[1] <= MAX_ANISOTROPY:
                return fitted
    return similarity(src, dst)


def part_affines(source: np.ndarray, target: np.ndarray) -> PartMaps:
    """Each part's map target -> source (see the module docstring); poses may be float or int (y, x)."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    seen_s, seen_t = visible(source), visible(target)
    len_s, len_t = torso_length(source), torso_length(target)
    across = len_s / len_t if len_s is not None and len_t is not None else 1.0
    maps = np.repeat(_identity()[None], NUM_PARTS, axis=0)
    valid = np.zeros(NUM_PARTS, bool)
    mirrored = np.zeros(NUM_PARTS, bool)

    torso = [j for j in TORSO if seen_s[j] and seen_t[j]]
    if len(torso) >= 2:
        maps[0], valid[0] = least_squares_affine(joints_xy(target, torso), joints_xy(source, torso)), True

    face_t = [j for j in HEAD if seen_t[j]]
    face = [j for j in (*HEAD, KP["neck"]) if seen_s[j] and seen_t[j]]
    if face_t and any(j in HEAD for j in face):
        if len(face) >= 2:
            maps[1] = similarity(joints_xy(target, face), joints_xy(source, face))
        else:
            centre_t, centre_s = joints_xy(target, face)[0], joints_xy(source, face)[0]
            maps[1] = np.hstack([across * np.eye(2), (centre_s - across * centre_t)[:, None]])
        valid[1] = True

    for i, (a, b) in enumerate(LIMBS, start=2):
        ja, jb = KP[a], KP[b]
        if not (seen_t[ja] and seen_t[jb]):
            continue
        a_t, b_t = joints_xy(target, [ja, jb])
        if seen_s[ja] and seen_s[jb]:
            a_s, b_s = joints_xy(source, [ja, jb])
        elif seen_s[KP[_mirror(a)]] and seen_s[KP[_mirror(b)]]:
            a_s, b_s = joints_xy(source, [KP[_mirror(a)], KP[_mirror(b)]])
            mirrored[i] = True
        else:
            continue
        maps[i], valid[i] = segment_map(a_t, b_t, a_s, b_s, across), True
    return PartMaps(maps, valid, mirrored)


def part_masks(
    target: np.ndarray, size: tuple[int, int], widths: PartWidths = PartWidths(), valid: np.ndarray | None = None
) -> np.ndarray:
    """``float32 (P, H, W)`` in {0, 1}: each part drawn in the ``target`` pose (empty where the target lacks
    it or ``valid`` says it has no source). Without a torso in the target its size is a quarter of H."""
    target = np.asarray(target, np.float64)
    h, w = int(size[0]), int(size[1])
    seen = visible(target)
    length = torso_length(target) or h / 4.0
    out = np.zeros((NUM_PARTS, h, w), np.float32)
    ok = np.ones(NUM_PARTS, bool) if valid is None else np.asarray(valid, bool)
    torso = [j for j in TORSO if seen[j]]
    if ok[0] and len(torso) >= 2:
        out[0] = hull_mask((h, w), joints_xy(target, torso), widths.torso_margin * length) > 0
    face = [j for j in HEAD if seen[j]]
    if ok[1] and face:
        out[1] = disk_mask((h, w), joints_xy(target, face).mean(0), widths.head * length) > 0
    for i, (a, b) in enumerate(LIMBS, start=2):
        ja, jb = KP[a], KP[b]
        if not (ok[i] and seen[ja] and seen[jb]):
            continue
        a_t, b_t = joints_xy(target, [ja, jb])
        end = b_t + (widths.extremity * (b_t - a_t) if b in EXTREMITIES else 0.0)
        width = (widths.arm if (a, b) in ARMS else widths.leg) * length
        out[i] = line_mask((h, w), a_t, end, width) > 0
    return out


def normalised_theta(to_source: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pixel maps ``(..., 2, 3)`` (x, y) -> ``float32`` matrices for ``F.affine_grid(..., align_corners=False)``
    on an ``size`` (H, W) image or any feature map that evenly subsamples it."""
    h, w = float(size[0]), float(size[1])
    to_norm = np.array([[2.0 / w, 0.0, 1.0 / w - 1.0], [0.0, 2.0 / h, 1.0 / h - 1.0], [0.0, 0.0, 1.0]])
    from_norm = np.linalg.inv(to_norm)
    maps = np.asarray(to_source, np.float64)
    full = np.concatenate([maps, np.broadcast_to([0.0, 0.0, 1.0], (*maps.shape[:-2], 1, 3))], axis=-2)
    return (to_norm @ full @ from_norm)[..., :2, :].astype(np.float32)


def part_geometry(
    source: np.ndarray, target: np.ndarray, size: tuple[int, int], widths: PartWidths = PartWidths()
) -> tuple[np.ndarray, np.ndarray]:
    """``(theta (P, 2, 3), masks (P, H, W))`` of one pair, both float32: what the deformable skips take."""
    maps = part_affines(source, target)
    return normalised_theta(maps.to_source, size), part_masks(target, size, widths, maps.valid)


def batch_geometry(
    sources: np.ndarray | torch.Tensor,
    targets: np.ndarray | torch.Tensor,
    size: tuple[int, int],
    widths: PartWidths = PartWidths(),
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`part_geometry` of ``(B, 18, 2)`` poses as tensors ``(B, P, 2, 3)`` and ``(B, P, H, W)`` on ``device``."""
    src = sources.detach().cpu().numpy() if isinstance(sources, torch.Tensor) else np.asarray(sources)
    tgt = targets.detach().cpu().numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
    pairs = [part_geometry(s, t, size, widths) for s, t in zip(src, tgt, strict=True)]
    theta = torch.from_numpy(np.stack([p[0] for p in pairs]))
    masks = torch.from_numpy(np.stack([p[1] for p in pairs]))
    return theta.to(device), masks.to(device)
