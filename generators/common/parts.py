"""Part-wise affine warping of a person image from its pose to a target pose.

The body is cut into rigid parts (torso, head, upper and lower arms and legs),
as in Siarohin et al. 2018 ("Deformable GANs for pose-based human image
generation"), whose deformable skip connections move each part's features by
the affine map between the part's joints in the two poses. Here the pixels
themselves are moved, with no network: each part's pixels are cut out of the
condition image by a mask drawn around its joints, warped by that part's
affine map and pasted over a background from which the person was inpainted
away. The result keeps the condition's clothing exactly and takes the target
pose by construction wherever both poses have the part's joints.

Poses are ``(18, 2)`` ``(y, x)`` OpenPose-18 arrays, -1 = missing
(``augreid.data.keypoints``); images are ``(H, W, 3)`` uint8.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.transform import SimilarityTransform

from augreid.data.keypoints import KP, visible

TORSO = (KP["neck"], KP["Rsho"], KP["Lsho"], KP["Rhip"], KP["Lhip"])
HEAD = (KP["nose"], KP["Reye"], KP["Leye"], KP["Rear"], KP["Lear"])
LEGS = (("Rhip", "Rkne"), ("Rkne", "Rank"), ("Lhip", "Lkne"), ("Lkne", "Lank"))
ARMS = (("Rsho", "Relb"), ("Relb", "Rwri"), ("Lsho", "Lelb"), ("Lelb", "Lwri"))


@dataclass(frozen=True)
class PartWidths:
    """Part sizes as fractions of the torso length (neck to the middle of the hips), so they follow the person's scale."""

    arm: float = 0.30
    leg: float = 0.42
    head: float = 0.36  # head radius
    torso_margin: float = 0.12  # the torso hull is grown by this much
    feather: float = 1.0  # Gaussian sigma (px) of the mask edges, so pasted parts do not show hard seams
    # Forearms and shins are cut this much (a fraction of their own length) beyond the wrist or ankle,
    # so that hands and shoes move with them.
    extremity: float = 0.25


def joints_xy(pose: np.ndarray, joints) -> np.ndarray:
    """The ``joints`` of a (y, x) pose as float (x, y) rows, the order OpenCV and the affine maps use."""
    return pose[list(joints)][:, ::-1].astype(np.float64)


def torso_length(pose: np.ndarray) -> float | None:
    """Neck to the middle of the visible hips, in pixels; None without a neck or hips."""
    seen = visible(pose)
    hips = [j for j in (KP["Rhip"], KP["Lhip"]) if seen[j]]
    if not seen[KP["neck"]] or not hips:
        return None
    length = float(np.linalg.norm(pose[KP["neck"]] - pose[hips].mean(axis=0)))
    return length if length >= 2.0 else None


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 rotation + uniform scale + shift that best maps ``src`` points (x, y) onto ``dst`` (Umeyama's
    least squares, as scikit-image fits it); a plain shift where ``src`` is one point repeated."""
    fitted = SimilarityTransform.from_estimate(src, dst)
    if not fitted:
        return np.hstack([np.eye(2), (dst.mean(0) - src.mean(0))[:, None]])
    return np.asarray(fitted.params[:2], np.float64)


def segment_map(a_s: np.ndarray, b_s: np.ndarray, a_t: np.ndarray, b_t: np.ndarray, across: float) -> np.ndarray:
    """The 2x3 affine taking segment a_s-b_s onto a_t-b_t: stretched along the limb by the ratio of
    the lengths (foreshortening), scaled across it by ``across`` (the body's scale) so it keeps its width."""
    u_s, u_t = b_s - a_s, b_t - a_t
    len_s, len_t = float(np.linalg.norm(u_s)), float(np.linalg.norm(u_t))
    if len_s < 1.0 or len_t < 1.0:
        return np.hstack([across * np.eye(2), (a_t - across * a_s)[:, None]])
    frame_s = np.stack([u_s / len_s, np.array([-u_s[1], u_s[0]]) / len_s], axis=1)  # columns: along, across
    frame_t = np.stack([u_t / len_t, np.array([-u_t[1], u_t[0]]) / len_t], axis=1)
    linear = frame_t @ np.diag([len_t / len_s, across]) @ frame_s.T
    return np.hstack([linear, (a_t - linear @ a_s)[:, None]])


def line_mask(shape: tuple[int, int], a: np.ndarray, b: np.ndarray, width: float) -> np.ndarray:
    """uint8 ``shape`` mask, 255 on the segment a-b ((x, y) points) drawn ``width`` px thick."""
    mask = np.zeros(shape, np.uint8)
    cv2.line(mask, tuple(int(round(v)) for v in a), tuple(int(round(v)) for v in b), 255, max(1, int(round(width))))
    return mask


def hull_mask(shape: tuple[int, int], points: np.ndarray, grow: float) -> np.ndarray:
    """uint8 ``shape`` mask, 255 in the convex hull of (x, y) ``points`` grown by ``grow`` px."""
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    size = max(1, int(round(2 * grow)) | 1)
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))


def disk_mask(shape: tuple[int, int], centre: np.ndarray, radius: float) -> np.ndarray:
    """uint8 ``shape`` mask, 255 in the disk of ``radius`` px around the (x, y) ``centre``."""
    mask = np.zeros(shape, np.uint8)
    cv2.circle(mask, tuple(int(round(v)) for v in centre), max(1, int(round(radius))), 255, -1)
    return mask


@dataclass
class Part:
    """One body part: its mask in the condition image and the affine map to the target pose."""

    name: str
    mask: np.ndarray  # uint8 (H, W), 255 inside
    to_target: np.ndarray  # 2x3, condition (x, y) -> target (x, y)


def body_parts(source: np.ndarray, target: np.ndarray, shape: tuple[int, int], widths: PartWidths) -> list[Part]:
    """The parts both poses have, in painting order (torso, legs, head, arms: arms in front of the body).

    Empty when the condition pose has no torso (neck and a hip): the person's scale is then unknown.
    """
    len_s, len_t = torso_length(source), torso_length(target)
    if len_s is None:
        return []
    seen_s, seen_t = visible(source), visible(target)
    across = (len_t / len_s) if len_t is not None else 1.0
    parts: list[Part] = []
    torso = [j for j in TORSO if seen_s[j] and seen_t[j]]
    if len(torso) >= 2:
        mask = hull_mask(shape, joints_xy(source, [j for j in TORSO if seen_s[j]]), widths.torso_margin * len_s)
        parts.append(Part("torso", mask, similarity(joints_xy(source, torso), joints_xy(target, torso))))
    seen = (seen_s, seen_t)
    parts += _limbs(source, target, seen, shape, LEGS, widths.leg * len_s, across, widths.extremity)
    parts += _head(source, target, seen, shape, widths, len_s, across)
    parts += _limbs(source, target, seen, shape, ARMS, widths.arm * len_s, across, widths.extremity)
    return parts


def _limbs(source, target, seen, shape, segments, width: float, across: float, extremity: float) -> list[Part]:
    seen_s, seen_t = seen
    out = []
    for a, b in segments:
        ja, jb = KP[a], KP[b]
        if seen_s[ja] and seen_s[jb] and seen_t[ja] and seen_t[jb]:
            a_s, b_s = joints_xy(source, [ja, jb])
            a_t, b_t = joints_xy(target, [ja, jb])
            end = b_s + (extremity * (b_s - a_s) if b in ("Rwri", "Lwri", "Rank", "Lank") else 0.0)
            out.append(Part(f"{a}-{b}", line_mask(shape, a_s, end, width), segment_map(a_s, b_s, a_t, b_t, across)))
    return out


def _head(source, target, seen, shape, widths: PartWidths, len_s: float, across: float) -> list[Part]:
    """The head moves upright, scaled like the body: pedestrians rarely tilt it, and a rotation fitted to
    face joints a few pixels apart is noise. Its centre goes to the target's centre of the face joints
    both poses have, or, with none shared, keeps its offset from the neck."""
    seen_s, seen_t = seen
    face = [j for j in HEAD if seen_s[j]]
    if not face:
        return []
    shared = [j for j in face if seen_t[j]]
    neck = KP["neck"]
    if shared:
        centre_s, centre_t = joints_xy(source, shared).mean(0), joints_xy(target, shared).mean(0)
    elif seen_s[neck] and seen_t[neck]:
        neck_s, neck_t = joints_xy(source, [neck])[0], joints_xy(target, [neck])[0]
        centre_s = joints_xy(source, face).mean(0)
        centre_t = neck_t + across * (centre_s - neck_s)
    else:
        return []
    mask = disk_mask(shape, joints_xy(source, face).mean(0), widths.head * len_s)
    return [Part("head", mask, np.hstack([across * np.eye(2), (centre_t - across * centre_s)[:, None]]))]


def warp_person(
    image: np.ndarray, source: np.ndarray, target: np.ndarray, widths: PartWidths = PartWidths(), inpaint: bool = True
) -> tuple[np.ndarray, int]:
    """``image`` (whose person stands in ``source``) re-posed to ``target``, and how many parts moved.

    With no part to move (no torso in ``source``) the image comes back unchanged, with 0.
    """
    h, w = image.shape[:2]
    parts = body_parts(np.asarray(source), np.asarray(target), (h, w), widths)
    if not parts:
        return image.copy(), 0
    person = np.maximum.reduce([p.mask for p in parts])
    if inpaint:
        grown = cv2.dilate(person, np.ones((5, 5), np.uint8))
        canvas = cv2.inpaint(image, grown, 3, cv2.INPAINT_TELEA)
    else:
        canvas = image
    return paste_parts(canvas, image, [(p.mask, p.to_target) for p in parts], widths.feather), len(parts)


def paste_parts(
    canvas: np.ndarray, image: np.ndarray, moves: list[tuple[np.ndarray, np.ndarray]], feather: float
) -> np.ndarray:
    """``canvas`` with each ``(mask, 2x3 map)`` part of ``image`` moved by its map and blended over it, in
    order (later parts on top). Mask edges are blurred by ``feather`` px (sigma) so no hard seam shows."""
    h, w = image.shape[:2]
    out = canvas.astype(np.float32)
    for mask, to_target in moves:
        warped = cv2.warpAffine(image, to_target, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        moved = cv2.warpAffine(mask, to_target, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32)
        if feather > 0:
            moved = np.asarray(cv2.GaussianBlur(moved, (0, 0), feather), np.float32)
        alpha = moved[..., None] / 255.0
        out = out * (1.0 - alpha) + warped.astype(np.float32) * alpha
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
