"""Per-identity appearance (body, clothing, bag) and per-camera nuisance, drawn from seeded streams."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


# ---------------------------------------------------------------- appearance


@dataclass(frozen=True)
class Camera:
    index: int  # 1-based, as in the file names
    directions: tuple[float, ...]  # walking directions seen, degrees (0 = toward the camera)
    gains: tuple[float, float, float]  # colour cast
    brightness: float
    contrast: float
    blur: float  # gaussian sigma, output pixels
    noise: float  # std, 0..255
    scale: float  # person height factor
    wall: tuple[int, int, int]
    floor: tuple[int, int, int]
    horizon: float  # wall/floor boundary, output rows
    clutter: tuple[tuple[int, int, int], ...]
    style: int  # 0 shop fronts, 1 tiled hall, 2 park, 3 plain wall with poles and signs
    scene_seed: int  # the camera's wide scene, of which each image shows a window


@dataclass(frozen=True)
class Appearance:
    height: float  # factor on the camera's person height
    shoulder: float  # half-widths, fraction of height
    hip: float
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_long: bool
    shirt: tuple[int, int, int]
    shirt2: tuple[int, int, int]
    pattern: str  # plain, stripes, twotone, jacket, logo
    long_sleeves: bool
    lower: str  # trousers, shorts, skirt
    lower_colour: tuple[int, int, int]
    shoes: tuple[int, int, int]
    bag: str  # none, backpack, shoulder, hand
    bag_colour: tuple[int, int, int]
    arm_swing: float = 1.0  # how much this person swings the arms when walking


_DIRECTION_SETS = ((0.0, 180.0), (90.0, 270.0), (45.0, 225.0), (135.0, 315.0), (0.0, 90.0, 180.0, 270.0))
_SKINS = ((241, 194, 167), (224, 172, 138), (198, 134, 99), (160, 104, 72), (112, 72, 50), (236, 200, 180))
_HAIRS = ((20, 18, 18), (45, 30, 22), (90, 60, 35), (150, 110, 60), (200, 170, 110), (150, 150, 150), (110, 45, 25))
_DARKS = ((30, 32, 40), (40, 45, 70), (60, 60, 62), (95, 95, 100), (70, 80, 120), (150, 130, 100), (190, 175, 140))


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    i = int(h * 6) % 6
    f = h * 6 - math.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return int(r * 255), int(g * 255), int(b * 255)


def _rgb(c: np.ndarray) -> tuple[int, int, int]:
    return int(c[0]), int(c[1]), int(c[2])


# fmt: off
_NEUTRALS = (
    (24, 24, 28), (52, 52, 58), (118, 118, 122), (178, 178, 180), (232, 232, 228), (32, 40, 78),
    (198, 184, 150), (98, 70, 46), (88, 94, 60), (120, 30, 40),
)
# fmt: on


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A clothing colour: common neutrals (black, grey, white, navy, beige...) or any saturated hue."""
    if rng.random() < 0.45:
        base = np.array(_pick(rng, _NEUTRALS), dtype=float)
        return _rgb(np.clip(base + rng.normal(0, 8, size=3), 0, 255))
    return _hsv(float(rng.random()), float(rng.uniform(0.4, 0.92)), float(rng.uniform(0.35, 0.95)))


def _pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


def make_appearance(rng: np.random.Generator) -> Appearance:
    shirt = _colour(rng)
    shirt2 = _colour(rng)
    lower = str(rng.choice(["trousers", "shorts", "skirt"], p=[0.62, 0.2, 0.18]))
    lower_colour = _pick(rng, _DARKS) if rng.random() < 0.65 else _colour(rng)
    return Appearance(
        height=float(rng.uniform(0.93, 1.05)),
        shoulder=float(rng.uniform(0.105, 0.13)),
        hip=float(rng.uniform(0.075, 0.092)),
        skin=_pick(rng, _SKINS),
        hair=_pick(rng, _HAIRS),
        hair_long=bool(rng.random() < (0.6 if lower == "skirt" else 0.2)),
        shirt=shirt,
        shirt2=shirt2,
        pattern=str(rng.choice(["plain", "stripes", "twotone", "jacket", "logo"], p=[0.35, 0.2, 0.17, 0.16, 0.12])),
        long_sleeves=bool(rng.random() < 0.55),
        lower=lower,
        lower_colour=lower_colour,
        shoes=_pick(rng, ((25, 25, 25), (240, 240, 240), (90, 60, 40), (60, 60, 70), (180, 40, 40))),
        bag=str(rng.choice(["none", "backpack", "shoulder", "hand"], p=[0.45, 0.25, 0.18, 0.12])),
        bag_colour=_pick(rng, _DARKS) if rng.random() < 0.6 else _colour(rng),
        arm_swing=float(rng.uniform(0.4, 1.1)),
    )


def _muted(rng: np.random.Generator) -> tuple[int, int, int]:
    """A scene colour: a random hue mixed halfway to grey, so that people stand out less than in a cartoon."""
    c = np.array(_hsv(float(rng.random()), float(rng.uniform(0.2, 0.7)), float(rng.uniform(0.3, 0.85))))
    return _rgb(0.55 * c + 0.45 * 128)


def make_camera(rng: np.random.Generator, index: int) -> Camera:
    cast = np.clip(1.0 + rng.normal(0.0, 0.09, size=3), 0.78, 1.22)
    jitter = rng.normal(0, 8, size=(2, 3))
    return Camera(
        index=index,
        directions=_DIRECTION_SETS[int(rng.integers(len(_DIRECTION_SETS)))],
        gains=(float(cast[0]), float(cast[1]), float(cast[2])),
        brightness=float(rng.uniform(0.72, 1.18)),
        contrast=float(rng.uniform(0.75, 1.05)),
        blur=float(rng.choice([0.0, 0.35, 0.6, 0.9])),
        noise=float(rng.uniform(1.0, 5.0)),
        scale=float(rng.uniform(0.9, 1.0)),
        wall=_rgb(np.clip(np.array(_pick(rng, _WALLS)) + jitter[0], 0, 255)),
        floor=_rgb(np.clip(np.array(_pick(rng, _FLOORS)) + jitter[1], 0, 255)),
        horizon=float(rng.uniform(48, 82)),
        clutter=tuple(_muted(rng) for _ in range(5)),
        style=int(rng.integers(4)),
        scene_seed=int(rng.integers(2**31)),
    )


_WALLS = ((150, 150, 148), (172, 160, 138), (140, 84, 68), (200, 198, 192), (92, 98, 110), (186, 172, 150))
_FLOORS = ((112, 112, 115), (150, 140, 124), (92, 92, 98), (168, 164, 158), (128, 118, 100))
