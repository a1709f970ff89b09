"""Rasterising one person around its skeleton, and the keypoints OpenPose would report for the drawing."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.path import Path as MplPath
from PIL import Image, ImageDraw
from scipy.spatial import ConvexHull

from augreid.data.demo.appearance import Appearance
from augreid.data.demo.common import IMAGE_H, IMAGE_W, SUPERSAMPLE
from augreid.data.demo.skeleton import _FACE_NORMALS, _HEAD_R, Projector, View, head_centre, skeleton3d
from augreid.data.keypoints import KP, MISSING, NUM_KEYPOINTS


# ---------------------------------------------------------------- drawing


def _ring(centre: Sequence[float], rx: float, rz: float, n: int = 12) -> np.ndarray:
    a = np.linspace(0, 2 * math.pi, n, endpoint=False)
    ring = np.zeros((n, 3))
    ring[:, 0] = centre[0] + rx * np.cos(a)
    ring[:, 1] = centre[1]
    ring[:, 2] = centre[2] + rz * np.sin(a)
    return ring


def _hull(points: np.ndarray) -> list[tuple[float, float]]:
    """Convex hull of 2-D points, as a polygon for ImageDraw."""
    points = np.asarray(points, dtype=float)
    hull = ConvexHull(points)
    return [tuple(points[k]) for k in hull.vertices]


def _shade(colour: Sequence[int], k: float) -> tuple[int, int, int]:
    r, g, b = (int(max(0, min(255, c * k))) for c in colour)
    return r, g, b


class Canvas:
    """A super-sampled RGB + alpha drawing of one person."""

    def __init__(self, width: int, height: int):
        self.rgb = Image.new("RGB", (width, height), (0, 0, 0))
        self.alpha = Image.new("L", (width, height), 0)
        self.draw = ImageDraw.Draw(self.rgb)
        self.mask_draw = ImageDraw.Draw(self.alpha)

    def polygon(self, pts: Sequence[tuple[float, float]], colour) -> None:
        if len(pts) >= 3:
            self.draw.polygon(list(pts), fill=tuple(colour))
            self.mask_draw.polygon(list(pts), fill=255)

    def ellipse(self, centre: np.ndarray | Sequence[float], rx: float, ry: float, colour) -> None:
        box = [centre[0] - rx, centre[1] - ry, centre[0] + rx, centre[1] + ry]
        self.draw.ellipse(box, fill=tuple(colour))
        self.mask_draw.ellipse(box, fill=255)

    def capsule(
        self, a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float], wa: float, wb: float, colour
    ) -> None:
        """A limb: a tapered band from a to b with round ends (half-widths wa, wb)."""
        a, b = np.asarray(a, float), np.asarray(b, float)
        d = b - a
        n = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-6)
        self.polygon([tuple(a + n * wa), tuple(b + n * wb), tuple(b - n * wb), tuple(a - n * wa)], colour)
        self.ellipse(a, wa, wa, colour)
        self.ellipse(b, wb, wb, colour)

    def patterned(self, pts: Sequence[tuple[float, float]], paint) -> None:
        """Fill a polygon with a pattern: ``paint(draw, offset)`` draws it on a box around the polygon."""
        if len(pts) < 3:
            return
        arr = np.asarray(pts)
        x0, y0 = np.floor(arr.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(arr.max(axis=0)).astype(int) + 1
        box = (int(x1 - x0), int(y1 - y0))
        local = [(x - x0, y - y0) for x, y in pts]
        mask = Image.new("L", box, 0)
        ImageDraw.Draw(mask).polygon(local, fill=255)
        pattern = Image.new("RGB", box, 0)
        paint(ImageDraw.Draw(pattern), np.array([x0, y0], dtype=float), box)
        self.rgb.paste(pattern, (int(x0), int(y0)), mask)
        self.mask_draw.polygon(list(pts), fill=255)


def _torso_pattern(app: Appearance, proj: Projector, joints: np.ndarray, facing: float):
    """The shirt's painter for ``Canvas.patterned``: stripes, two-tone, jacket, logo or plain."""

    def paint(draw, offset: np.ndarray, size: tuple[int, int]) -> None:
        draw.rectangle([0, 0, size[0], size[1]], fill=app.shirt)
        _paint_pattern(draw, app, proj, joints, facing, offset, size)

    return paint


def _paint_pattern(
    draw, app: Appearance, proj: Projector, joints: np.ndarray, facing: float, offset: np.ndarray, size: tuple[int, int]
) -> None:
    oy = offset[1]
    top = proj.xy(joints[KP["neck"]])[1] - oy
    hip = proj.xy((joints[KP["Rhip"]] + joints[KP["Lhip"]]) / 2)[1] - oy
    if app.pattern == "stripes":
        band = max(2.0, 0.028 * proj.scale)
        y = top - band
        while y < hip + band:
            draw.rectangle([0, y, size[0], y + band / 2], fill=app.shirt2)
            y += band
    elif app.pattern == "twotone":
        draw.rectangle([0, top + 0.42 * (hip - top), size[0], size[1]], fill=app.shirt2)
    elif app.pattern == "jacket" and facing > 0.2:
        centre = -offset + proj.xy((joints[KP["neck"]] + (joints[KP["Rhip"]] + joints[KP["Lhip"]]) / 2) / 2)
        half = 0.035 * proj.scale * facing
        draw.rectangle([centre[0] - half, 0, centre[0] + half, size[1]], fill=app.shirt2)
    elif app.pattern == "logo" and abs(facing) > 0.3:
        centre = -offset + proj.xy(joints[KP["neck"]] * 0.55 + (joints[KP["Rhip"]] + joints[KP["Lhip"]]) / 2 * 0.45)
        half = 0.032 * proj.scale * abs(facing)
        draw.rectangle(
            [
                centre[0] - half,
                centre[1] - 0.8 * half / max(abs(facing), 0.3),
                centre[0] + half,
                centre[1] + 0.8 * half / max(abs(facing), 0.3),
            ],
            fill=app.shirt2,
        )


def render_person(app: Appearance, view: View, factor: int = SUPERSAMPLE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one person; returns (rgb float (H,W,3) premultiplied, alpha (H,W) in [0,1], joints3d)."""
    joints = skeleton3d(app, view.phase, view.stride)
    proj = Projector(view, factor)
    size = (IMAGE_W * factor, IMAGE_H * factor)
    canvas = Canvas(*size)
    s = proj.scale
    facing = proj.cos  # >0: front towards the camera
    xy = {name: proj.xy(joints[i]) for name, i in KP.items()}
    dep = {name: float(proj.depth(joints[i])) for name, i in KP.items()}
    hip_mid = (joints[KP["Rhip"]] + joints[KP["Lhip"]]) / 2
    items: list[tuple[float, int, Callable[[], None]]] = []  # (depth, order, draw) painted far to near

    def add(depth: float, order: int, fn) -> None:
        items.append((depth, order, fn))

    # Legs: trousers, or skin below shorts/skirt; shoes.
    for side in ("R", "L"):
        hip, knee, ankle = xy[f"{side}hip"], xy[f"{side}kne"], xy[f"{side}ank"]
        k = 1.0 if dep[f"{side}kne"] >= dep[f"{'L' if side == 'R' else 'R'}kne"] else 0.85
        d = (dep[f"{side}hip"] + dep[f"{side}ank"]) / 2
        fwd = np.array([proj.sin * 0.035 * s, 0.0])

        def leg(hip=hip, knee=knee, ankle=ankle, k=k, fwd=fwd):
            lower = app.lower_colour if app.lower == "trousers" else app.skin
            upper = app.lower_colour if app.lower != "skirt" else app.skin
            canvas.capsule(knee, ankle, 0.033 * s, 0.026 * s, _shade(lower, k))
            if app.lower == "shorts":
                mid = hip + 0.55 * (knee - hip)
                canvas.capsule(mid, knee, 0.034 * s, 0.031 * s, _shade(app.skin, k))
                canvas.capsule(hip, mid, 0.045 * s, 0.04 * s, _shade(upper, k))
            else:
                canvas.capsule(hip, knee, 0.045 * s, 0.034 * s, _shade(upper, k))
            canvas.ellipse(
                ankle + fwd * 0.6 + [0, 0.012 * s], 0.024 * s + abs(fwd[0]) * 0.7, 0.016 * s, _shade(app.shoes, k)
            )

        add(d - 0.5, 0, leg)

    # Pelvis (trousers/shorts) or skirt: a cone between two rings, drawn over the thighs' tops.
    def pelvis():
        hy = hip_mid[1]
        if app.lower == "skirt":
            rings = np.vstack(
                [_ring([0, hy + 0.03, 0], app.hip + 0.035, 0.07), _ring([0, hy - 0.2, 0], app.hip + 0.085, 0.11)]
            )
        else:
            rings = np.vstack(
                [_ring([0, hy + 0.035, 0], app.hip + 0.03, 0.065), _ring([0, hy - 0.05, 0], app.hip + 0.035, 0.06)]
            )
        canvas.polygon(_hull(proj.xy(rings)), app.lower_colour)

    add(-0.2, 1, pelvis)

    # Torso: rings from the hips to the shoulders, patterned.
    def torso():
        hy = hip_mid[1]
        sh = joints[KP["neck"]]
        rings = np.vstack(
            [
                _ring([0, hy + 0.03, 0.0], app.hip + 0.03, 0.065),
                _ring([0, sh[1] - 0.06, sh[2]], app.shoulder + 0.005, 0.07),
                _ring([0, sh[1] - 0.005, sh[2]], app.shoulder - 0.012, 0.055),
            ]
        )
        canvas.patterned(_hull(proj.xy(rings)), _torso_pattern(app, proj, joints, facing))
        # neck
        canvas.capsule(xy["neck"], proj.xy(head_centre(joints)), 0.022 * s, 0.022 * s, app.skin)

    add(0.0, 2, torso)

    # Arms.
    for side in ("R", "L"):
        sho, elb, wri = xy[f"{side}sho"], xy[f"{side}elb"], xy[f"{side}wri"]
        d = (dep[f"{side}elb"] + dep[f"{side}wri"]) / 2
        k = 1.0 if d >= 0 else 0.82
        holds_bag = app.bag == "hand" and side == "R"

        def arm(sho=sho, elb=elb, wri=wri, k=k, holds_bag=holds_bag):
            sleeve = _shade(app.shirt, k)
            fore = sleeve if app.long_sleeves else _shade(app.skin, k)
            canvas.capsule(elb, wri, 0.024 * s, 0.02 * s, fore)
            canvas.capsule(sho, elb, 0.031 * s, 0.026 * s, sleeve)
            canvas.ellipse(wri + (wri - elb) * 0.25, 0.019 * s, 0.019 * s, _shade(app.skin, k))
            if holds_bag:
                c = wri + [0, 0.07 * s]
                canvas.polygon(
                    [
                        (c[0] - 0.045 * s, c[1] - 0.04 * s),
                        (c[0] + 0.045 * s, c[1] - 0.04 * s),
                        (c[0] + 0.05 * s, c[1] + 0.05 * s),
                        (c[0] - 0.05 * s, c[1] + 0.05 * s),
                    ],
                    _shade(app.bag_colour, k),
                )

        # Arms in front of the body plane are drawn after the torso; the far arm before it.
        add(d + (0.02 if d > -0.02 else -0.5), 3, arm)

    # Bags.
    neck = joints[KP["neck"]]
    if app.bag == "backpack":
        centre = np.array([0.0, neck[1] - 0.13, neck[2] - 0.1])
        corners = np.array([[x, y, z] for x in (-0.085, 0.085) for y in (-0.12, 0.11) for z in (-0.05, 0.05)])
        pts = proj.xy(centre + corners)

        def backpack(pts=pts):
            canvas.polygon(_hull(pts), app.bag_colour)

        add(float(proj.depth(centre)) * 2, 4, backpack)
        if facing > 0.25:

            def straps():
                for side in ("R", "L"):
                    a = xy[f"{side}sho"] * 0.7 + xy["neck"] * 0.3
                    b = proj.xy(joints[KP[f"{side}hip"]] * 0.35 + joints[KP[f"{side}sho"]] * 0.65)
                    canvas.capsule(a, b, 0.011 * s, 0.011 * s, _shade(app.bag_colour, 0.8))

            add(0.01, 5, straps)
    elif app.bag == "shoulder":
        centre = np.array([app.hip + 0.06, hip_mid[1] + 0.02, 0.0])
        corners = np.array([[x, y, z] for x in (-0.02, 0.02) for y in (-0.06, 0.06) for z in (-0.07, 0.07)])
        pts = proj.xy(centre + corners)

        def shoulder_bag(pts=pts):
            canvas.capsule(xy["Rsho"], pts.mean(axis=0), 0.01 * s, 0.01 * s, _shade(app.bag_colour, 0.7))
            canvas.polygon(_hull(pts), app.bag_colour)

        add(float(proj.depth(centre)) + 0.05, 4, shoulder_bag)

    # Head and hair.
    hc = head_centre(joints)
    hxy = proj.xy(hc)
    r = _HEAD_R * s

    def head():
        back = -proj.sin * 0.25 * r  # the back of the head, in image x, for a side view
        if app.hair_long and facing > -0.3:
            canvas.polygon(
                [
                    (hxy[0] - 0.95 * r + back, hxy[1] - 0.2 * r),
                    (hxy[0] + 0.95 * r + back, hxy[1] - 0.2 * r),
                    (hxy[0] + 1.05 * r + back, hxy[1] + 2.1 * r),
                    (hxy[0] - 1.05 * r + back, hxy[1] + 2.1 * r),
                ],
                app.hair,
            )
        canvas.ellipse(hxy, 0.82 * r, r, app.skin)
        if facing < -0.35:  # seen from behind: the hair covers the head
            canvas.ellipse(hxy + [0, -0.05 * r], 0.88 * r, 1.05 * r, app.hair)
            if app.hair_long:
                canvas.polygon(
                    [
                        (hxy[0] - 0.95 * r, hxy[1]),
                        (hxy[0] + 0.95 * r, hxy[1]),
                        (hxy[0] + 1.05 * r, hxy[1] + 2.1 * r),
                        (hxy[0] - 1.05 * r, hxy[1] + 2.1 * r),
                    ],
                    app.hair,
                )
        else:
            box = [hxy[0] - 0.9 * r + back, hxy[1] - 1.08 * r, hxy[0] + 0.9 * r + back, hxy[1] + 0.9 * r]
            start = 180 - 25 * max(0.0, -proj.sin) - 10
            end = 360 + 25 * max(0.0, proj.sin) + 10
            canvas.draw.chord(box, start, end, fill=app.hair)
            canvas.mask_draw.chord(box, start, end, fill=255)
            if facing > 0.3:  # eyes, a hint of a face
                for eye in ("Reye", "Leye"):
                    e = xy[eye]
                    canvas.draw.ellipse(
                        [e[0] - 0.1 * r, e[1] - 0.08 * r, e[0] + 0.1 * r, e[1] + 0.08 * r], fill=(40, 30, 30)
                    )

    add(10.0, 6, head)

    for _, _, fn in sorted(items, key=lambda item: (item[0], item[1])):
        fn()
    # The canvas is black wherever alpha is 0 and alpha is binary, so it is already
    # premultiplied: a box reduction of both gives the anti-aliased person and its coverage.
    rgb = np.asarray(canvas.rgb.reduce(factor), dtype=np.float32)
    alpha = np.asarray(canvas.alpha.reduce(factor), dtype=np.float32) / 255.0
    return rgb, alpha, joints


def visible_keypoints(app: Appearance, view: View, joints: np.ndarray) -> np.ndarray:
    """The (18, 2) int32 (y, x) keypoints of the drawn person, ``-1`` where not seen (see module doc)."""
    proj = Projector(view, 1.0)
    xy = proj.xy(joints)
    pose = np.stack([np.round(xy[:, 1]), np.round(xy[:, 0])], axis=1).astype(np.int32)
    seen = np.ones(NUM_KEYPOINTS, dtype=bool)
    for name, (normal, threshold) in _FACE_NORMALS.items():
        seen[KP[name]] = proj.normal_depth(normal) > threshold
    torso = _torso_outline(app, proj, joints)
    for name in ("Relb", "Rwri", "Lelb", "Lwri"):
        i = KP[name]
        if proj.depth(joints[i]) < -0.02 and _inside(xy[i], torso):
            seen[i] = False
    inside = (pose[:, 0] >= 0) & (pose[:, 0] < IMAGE_H) & (pose[:, 1] >= 0) & (pose[:, 1] < IMAGE_W)
    pose[~(seen & inside)] = MISSING
    return pose


def _torso_outline(app: Appearance, proj: Projector, joints: np.ndarray) -> np.ndarray:
    hip_y = (joints[KP["Rhip"], 1] + joints[KP["Lhip"], 1]) / 2
    neck = joints[KP["neck"]]
    # Slightly smaller than the drawn torso so that a joint at the edge still counts as seen.
    rings = np.vstack(
        [
            _ring([0, hip_y - 0.06, 0.0], app.hip + 0.01, 0.05),
            _ring([0, neck[1] - 0.06, neck[2]], app.shoulder - 0.015, 0.055),
        ]
    )
    return np.array(_hull(proj.xy(rings)))


def _inside(p: np.ndarray, polygon: np.ndarray) -> bool:
    return bool(len(polygon) >= 3 and MplPath(polygon).contains_point(tuple(p)))
