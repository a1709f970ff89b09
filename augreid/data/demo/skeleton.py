"""The parametric 3-D walking skeleton (OpenPose-18 joints) and its projection into the image."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from augreid.data.demo.appearance import Appearance
from augreid.data.keypoints import KP, NUM_KEYPOINTS


# ---------------------------------------------------------------- skeleton


@dataclass(frozen=True)
class View:
    """Where and how one person is seen in one image."""

    direction: float  # degrees: 0 faces the camera, 90 walks to image right, 180 back, 270 walks left
    phase: float  # walking cycle, radians
    stride: float  # 0 = standing, 1 = normal walk
    height_px: float
    cx: float  # horizontal centre, output pixels
    foot_y: float  # ground line, output pixels


# Proportions as fractions of body height, Y up from the ground (X = the person's left, Z = forward).
_HIP_Y, _SHOULDER_Y, _NECK_Y = 0.53, 0.815, 0.83
_HEAD_Y, _HEAD_R = 0.925, 0.06
_THIGH, _SHIN, _UPPER_ARM, _FOREARM = 0.245, 0.25, 0.175, 0.16


def skeleton3d(app: Appearance, phase: float, stride: float) -> np.ndarray:
    """The 18 OpenPose joints in body coordinates (X left, Y up, Z forward), shape (18, 3)."""
    joints = np.zeros((NUM_KEYPOINTS, 3))
    swing = 0.42 * stride * math.sin(phase)
    legs = {}
    for side, sign, angle, ph in (("R", -1.0, swing, phase), ("L", 1.0, -swing, phase + math.pi)):
        hip = np.array([sign * app.hip, _HIP_Y, 0.0])
        bend = stride * (0.12 + 0.7 * max(0.0, math.cos(ph)) ** 1.5)
        knee = hip + _THIGH * np.array([sign * -0.06, -math.cos(angle), math.sin(angle)])
        shin = angle - bend
        ankle = knee + _SHIN * np.array([sign * -0.02, -math.cos(shin), math.sin(shin)])
        legs[side] = (hip, knee, ankle)
    # Keep the lower foot on the ground: the body bobs up and down as it walks.
    drop = min(legs["R"][2][1], legs["L"][2][1]) - 0.035
    lean = 0.012 * stride
    for side, sign, angle in (("R", -1.0, -swing), ("L", 1.0, swing)):
        shoulder = np.array([sign * app.shoulder, _SHOULDER_Y + drop, lean])
        upper = 0.9 * app.arm_swing * angle
        fore = upper + 0.15 + 0.5 * stride * max(0.0, math.sin(upper + 0.2))
        elbow = shoulder + _UPPER_ARM * np.array([sign * 0.12, -math.cos(upper), math.sin(upper)])
        wrist = elbow + _FOREARM * np.array([sign * 0.1, -math.cos(fore), math.sin(fore)])
        joints[KP[f"{side}sho"]], joints[KP[f"{side}elb"]], joints[KP[f"{side}wri"]] = shoulder, elbow, wrist
        hip, knee, ankle = legs[side]
        joints[KP[f"{side}hip"]] = hip + [0.0, drop, 0.0]
        joints[KP[f"{side}kne"]] = knee + [0.0, drop, 0.0]
        joints[KP[f"{side}ank"]] = ankle + [0.0, drop, 0.0]
    head = np.array([0.0, _HEAD_Y + drop, lean + 0.005])
    r = _HEAD_R
    joints[KP["neck"]] = [0.0, _NECK_Y + drop, lean]
    joints[KP["nose"]] = head + [0.0, -0.1 * r, 0.95 * r]
    joints[KP["Reye"]] = head + [-0.38 * r, 0.15 * r, 0.8 * r]
    joints[KP["Leye"]] = head + [0.38 * r, 0.15 * r, 0.8 * r]
    joints[KP["Rear"]] = head + [-0.92 * r, 0.0, -0.05 * r]
    joints[KP["Lear"]] = head + [0.92 * r, 0.0, -0.05 * r]
    return joints


def head_centre(joints: np.ndarray) -> np.ndarray:
    return (joints[KP["Rear"]] + joints[KP["Lear"]]) / 2 + [0.0, 0.0, 0.05 * _HEAD_R]


# Outward normals of the face points (body coordinates) and the depth above which each counts as seen.
_FACE_NORMALS = {
    "nose": ((0.0, 0.0, 1.0), -0.1),
    "Reye": ((-0.45, 0.0, 0.9), 0.05),
    "Leye": ((0.45, 0.0, 0.9), 0.05),
    "Rear": ((-1.0, 0.0, -0.1), -0.35),
    "Lear": ((1.0, 0.0, -0.1), -0.35),
}


class Projector:
    """Orthographic projection of body coordinates into the (super-sampled) image."""

    def __init__(self, view: View, factor: float = 1.0):
        t = math.radians(view.direction)
        self.cos, self.sin = math.cos(t), math.sin(t)
        self.scale = view.height_px * factor
        self.cx = view.cx * factor
        self.foot = view.foot_y * factor
        self.factor = factor

    def depth(self, p: np.ndarray) -> np.ndarray:
        """Toward the camera is positive."""
        p = np.asarray(p, dtype=float)
        return -p[..., 0] * self.sin + p[..., 2] * self.cos

    def xy(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        x = p[..., 0] * self.cos + p[..., 2] * self.sin
        return np.stack([self.cx + self.scale * x, self.foot - self.scale * p[..., 1]], axis=-1)

    def normal_depth(self, n: Sequence[float]) -> float:
        return -n[0] * self.sin + n[2] * self.cos
