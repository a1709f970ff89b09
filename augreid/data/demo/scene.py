"""Camera scenes and backgrounds behind the person, and the camera's colour, blur and noise."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from augreid.data.demo.appearance import Appearance, Camera, _pick
from augreid.data.demo.common import IMAGE_H, IMAGE_W, _rng
from augreid.data.demo.raster import _shade, render_person
from augreid.data.demo.skeleton import View


# ---------------------------------------------------------------- background and camera


SCENE_WIDTH = 4 * IMAGE_W  # each camera's scene is four crops wide
_SCENE_MARGIN = 8  # extra rows, for vertical jitter of the crop window


@functools.lru_cache(maxsize=8)
def camera_scene(cam: Camera) -> np.ndarray:
    """The wide scene a camera looks at (output pixels), float32 (H + margin, SCENE_WIDTH, 3)."""
    rng = _rng(cam.scene_seed)
    f = 2  # drawn at 2x, then reduced, for soft edges
    w, h = SCENE_WIDTH * f, (IMAGE_H + _SCENE_MARGIN) * f
    horizon = cam.horizon * f
    img = Image.new("RGB", (w, h), cam.wall)
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, horizon, w, h], fill=cam.floor)
    clutter = list(cam.clutter)
    if cam.style == 0:  # shop fronts: windows and doors between pillars
        x = 0.0
        while x < w:
            width = rng.uniform(18, 44) * f
            top = rng.uniform(6, max(8.0, cam.horizon - 20)) * f
            glass = _shade(_pick(rng, clutter), 0.7)
            draw.rectangle([x + 3 * f, top, x + width - 3 * f, horizon - 2 * f], fill=glass)
            draw.line([x + width / 2, top, x + width / 2, horizon - 2 * f], fill=cam.wall, width=f)
            x += width
    elif cam.style == 1:  # a tiled hall: floor joints in perspective, a band and notices on the wall
        for y in np.arange(horizon, h, rng.uniform(7, 11) * f):
            draw.line([0, y, w, y], fill=_shade(cam.floor, 0.82), width=f)
        for x in np.arange(0, w, rng.uniform(12, 18) * f):
            draw.line([x, horizon, x + (x - w / 2) * 0.6, h], fill=_shade(cam.floor, 0.82), width=f)
        band = rng.uniform(8, max(10.0, cam.horizon - 14)) * f
        draw.rectangle([0, band, w, band + 5 * f], fill=_pick(rng, clutter))
        for x in np.arange(rng.uniform(0, 40) * f, w, rng.uniform(40, 80) * f):
            draw.rectangle([x, band - 16 * f, x + 12 * f, band - 4 * f], fill=_pick(rng, clutter))
    elif cam.style == 2:  # a park: bushes and trees over a path
        green = [tuple(int(v) for v in 0.5 * np.array(c) + 0.5 * np.array((70, 110, 60))) for c in clutter]
        for _ in range(int(rng.integers(14, 24))):
            cx, cy = rng.uniform(0, w), rng.uniform(0, horizon + 4 * f)
            rx, ry = rng.uniform(8, 22) * f, rng.uniform(6, 16) * f
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=_pick(rng, green))
    else:  # a plain wall with poles, pipes and signs
        for _ in range(int(rng.integers(4, 9))):
            x = rng.uniform(0, w)
            draw.rectangle([x, 0, x + rng.uniform(2, 5) * f, horizon + rng.uniform(0, 8) * f], fill=_pick(rng, clutter))
        for _ in range(int(rng.integers(3, 7))):
            x, y = rng.uniform(0, w), rng.uniform(0, horizon)
            draw.rectangle([x, y, x + rng.uniform(8, 22) * f, y + rng.uniform(5, 14) * f], fill=_pick(rng, clutter))
    scene = np.asarray(img.reduce(f), dtype=np.float32)
    # Washed-out scenes: a background as vivid as the clothes would make re-ID about the camera.
    scene = 0.6 * scene + 0.4 * scene.mean(axis=(0, 1), keepdims=True)
    shade = np.linspace(1.08, 0.9, scene.shape[0], dtype=np.float32)[:, None, None]  # light from above
    return scene * shade


def make_background(cam: Camera, rng: np.random.Generator, people: Sequence[Appearance] = ()) -> np.ndarray:
    """What is behind the person: a window on the camera's scene, a few objects, maybe a bystander.

    float32 (H, W, 3) in 0..255. ``people`` are appearances a bystander may borrow.
    """
    scene = camera_scene(cam)
    x0 = int(rng.integers(0, SCENE_WIDTH - IMAGE_W + 1))
    y0 = int(rng.integers(0, _SCENE_MARGIN + 1))
    bg = scene[y0 : y0 + IMAGE_H, x0 : x0 + IMAGE_W] * float(rng.uniform(0.93, 1.07))
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 3))):  # bins, bollards, bags left on the floor
        x, y = rng.uniform(-8, IMAGE_W), rng.uniform(cam.horizon - 10, IMAGE_H)
        draw.rectangle([x, y, x + rng.uniform(3, 12), y + rng.uniform(3, 14)], fill=_pick(rng, cam.clutter))
    bg = np.asarray(img, dtype=np.float32)
    if people and rng.random() < 0.2:
        # Someone else walking past, half out of the crop, as in real detector boxes.
        other = people[int(rng.integers(len(people)))]
        side = -1 if rng.random() < 0.5 else 1
        view = View(
            float(rng.uniform(0, 360)),
            float(rng.uniform(0, 2 * math.pi)),
            1.0,
            float(rng.uniform(85, 105)),
            32 + side * float(rng.uniform(30, 40)),
            float(rng.uniform(112, 122)),
        )
        rgb, alpha, _ = render_person(other, view)
        bg = bg * (1 - alpha[..., None]) + rgb
    return bg


def apply_camera(img: np.ndarray, cam: Camera, noise: np.ndarray) -> np.ndarray:
    """Colour cast, brightness, contrast, blur and sensor noise; returns uint8."""
    out = img * np.asarray(cam.gains, dtype=np.float32) * cam.brightness
    mean = out.mean()
    out = (out - mean) * cam.contrast + mean
    if cam.blur > 0:
        out = ndimage.gaussian_filter(out, sigma=(cam.blur, cam.blur, 0), mode="nearest")
    out = out + noise * cam.noise
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
