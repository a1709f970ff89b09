"""Planning every image of the dataset (who, camera, view, split) and rendering one shot."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from augreid.data.demo.appearance import Appearance, Camera, _pick, make_appearance, make_camera
from augreid.data.demo.common import (
    _CAMERAS,
    _PEOPLE,
    _PLAN,
    _SHOTS,
    IMAGE_H,
    IMAGE_W,
    JPEG_QUALITY,
    NUM_DISTRACTORS,
    NUM_JUNK,
    _rng,
)
from augreid.data.demo.raster import render_person, visible_keypoints
from augreid.data.demo.scene import apply_camera, make_background
from augreid.data.demo.skeleton import View
from augreid.data.imaging import encode_jpeg
from augreid.data.keypoints import MISSING, NUM_KEYPOINTS
from augreid.data.market import GALLERY, QUERY, TRAIN


# ---------------------------------------------------------------- planning


@dataclass(frozen=True)
class Shot:
    """One image to draw."""

    split: str
    name: str
    pid: int  # 0 = distractor (background only), -1 = junk (a bad crop)
    camera: int
    view: View | None
    seed: tuple[int, ...]  # random stream of this image's background and noise
    person: int = 0  # whose appearance is drawn (the pid, or the person a junk crop cut)


def _name(pid: int, cam: int, frame: int, box: int) -> str:
    pid_text = "-1" if pid < 0 else f"{pid:04d}"
    return f"{pid_text}_c{cam}s1_{frame:06d}_{box:02d}.jpg"


def plan_dataset(
    seed: int, num_train_ids: int, num_test_ids: int, num_cameras: int
) -> tuple[list[Shot], dict[int, Appearance], list[Camera]]:
    """Decide every image: who, which camera, which view, which split. Pure (no files)."""
    cameras = [make_camera(_rng(seed, _CAMERAS, c), c) for c in range(1, num_cameras + 1)]
    plan = _rng(seed, _PLAN)
    total = num_train_ids + num_test_ids
    pids = np.arange(1, total + 1)
    train_pids = set(int(p) for p in plan.choice(pids, size=num_train_ids, replace=False))
    people = {int(p): make_appearance(_rng(seed, _PEOPLE, int(p))) for p in pids}
    frames = {c.index: int(plan.integers(100, 3000)) for c in cameras}
    shots: list[Shot] = []

    def next_frame(cam: int) -> int:
        frames[cam] += int(plan.integers(4, 60))
        return frames[cam]

    for pid in map(int, pids):
        app = people[pid]
        is_train = pid in train_pids
        k = int(plan.integers(2, num_cameras + 1))
        cams = sorted(int(c) + 1 for c in plan.choice(num_cameras, size=k, replace=False))
        track: list[Shot] = []
        for cam_index in cams:
            cam = cameras[cam_index - 1]
            n = int(plan.integers(2, 6))
            direction = float(_pick(plan, cam.directions)) + plan.normal(0, 12)
            stride = 0.15 if plan.random() < 0.1 else float(plan.uniform(0.75, 1.15))
            phase = float(plan.uniform(0, 2 * math.pi))
            step = float(plan.uniform(0.7, 1.3)) * (1 if plan.random() < 0.5 else -1)
            for _ in range(n):
                height = app.height * cam.scale * 112 * float(plan.normal(1.0, 0.025))
                view = View(
                    direction=(direction + float(plan.normal(0, 5))) % 360,
                    phase=phase % (2 * math.pi),
                    stride=stride,
                    height_px=float(np.clip(height, 96, 119)),
                    cx=32 + float(plan.normal(0, 2.0)),
                    foot_y=float(np.clip(123.5 + plan.normal(0, 1.5), 120, 126.5)),
                )
                phase += step + float(plan.normal(0, 0.3))
                frame = next_frame(cam_index)
                track.append(
                    Shot(
                        TRAIN if is_train else GALLERY,
                        _name(pid, cam_index, frame, int(plan.integers(1, 9))),
                        pid,
                        cam_index,
                        view,
                        (seed, _SHOTS, pid, cam_index, frame),
                        pid,
                    )
                )
        if not is_train:
            track = _pick_queries(track, plan)
        shots.extend(track)
    for _ in range(NUM_DISTRACTORS):
        cam_index = int(plan.integers(1, num_cameras + 1))
        frame = next_frame(cam_index)
        shots.append(
            Shot(
                GALLERY,
                _name(0, cam_index, frame, int(plan.integers(1, 9))),
                0,
                cam_index,
                None,
                (seed, _SHOTS, 0, cam_index, frame),
            )
        )
    for _ in range(NUM_JUNK):
        # A bad detection: a random test person, crop shifted so that most of the body is cut off.
        source = _pick(plan, [s for s in shots if s.split == GALLERY and s.pid > 0])
        cam_index = source.camera
        frame = next_frame(cam_index)
        v = source.view
        shifted = View(
            v.direction,
            v.phase,
            v.stride,
            v.height_px * float(plan.uniform(1.3, 1.8)),
            v.cx + float(plan.choice([-1, 1])) * float(plan.uniform(18, 28)),
            v.foot_y + float(plan.uniform(30, 70)),
        )
        shots.append(
            Shot(
                GALLERY,
                _name(-1, cam_index, frame, int(plan.integers(1, 9))),
                -1,
                cam_index,
                shifted,
                (seed, _SHOTS, 9999, cam_index, frame),
                source.person,
            )
        )
    return shots, people, cameras


def _pick_queries(track: list[Shot], plan: np.random.Generator) -> list[Shot]:
    """One query per camera of a test identity, kept only if the gallery still has it in another camera."""
    by_cam: dict[int, list[int]] = {}
    for i, shot in enumerate(track):
        by_cam.setdefault(shot.camera, []).append(i)
    chosen = {int(plan.choice(idx)) for idx in by_cam.values()}
    out = []
    for i, shot in enumerate(track):
        if i in chosen:
            shot = Shot(QUERY, shot.name, shot.pid, shot.camera, shot.view, shot.seed, shot.person)
        out.append(shot)
    gallery_cams = {s.camera for s in out if s.split == GALLERY}
    # Every camera keeps >= 1 gallery image (n >= 2 per camera) and k >= 2 cameras, so each
    # query has a match in another camera; demote a query only if that ever fails.
    return [
        s
        if s.split != QUERY or gallery_cams - {s.camera}
        else Shot(GALLERY, s.name, s.pid, s.camera, s.view, s.seed, s.person)
        for s in out
    ]


# ---------------------------------------------------------------- rendering


@dataclass
class RenderedShot:
    shot: Shot
    image: np.ndarray  # uint8 (H, W, 3)
    background: np.ndarray | None  # uint8 (H, W, 3): the image without the person (shadow kept), if asked for
    pose: np.ndarray  # int32 (18, 2) (y, x), -1 missing


def render_shot(
    shot: Shot, people: dict[int, Appearance], cameras: list[Camera], *, with_background: bool = False
) -> RenderedShot:
    """Draw one image. ``with_background`` also returns the scene without the person (for checks)."""
    cam = cameras[shot.camera - 1]
    rng = _rng(*shot.seed)
    background = make_background(cam, rng, [people[p] for p in sorted(people)])
    noise = rng.normal(0.0, 1.0, size=background.shape).astype(np.float32)
    image = background
    pose = np.full((NUM_KEYPOINTS, 2), MISSING, dtype=np.int32)
    if shot.view is not None:
        app = people[shot.person]
        rgb, alpha, joints = render_person(app, shot.view)
        background = _shadow(background, shot.view)
        image = background * (1 - alpha[..., None]) + rgb
        pose = visible_keypoints(app, shot.view, joints)
    plain = apply_camera(background, cam, noise) if with_background else None
    return RenderedShot(shot, apply_camera(image, cam, noise), plain, pose)


def _shadow(background: np.ndarray, view: View) -> np.ndarray:
    """A soft dark ellipse on the ground under the feet."""
    yy, xx = np.mgrid[0:IMAGE_H, 0:IMAGE_W].astype(np.float32)
    d = ((xx - view.cx) / (0.14 * view.height_px)) ** 2 + ((yy - view.foot_y) / (0.025 * view.height_px)) ** 2
    return background * (1 - 0.35 * np.exp(-d))[..., None]


def encode_demo_jpeg(image: np.ndarray) -> bytes:
    """The demo's JPEG encoding: no chroma subsampling (sharper colour edges on small images)."""
    return encode_jpeg(image, JPEG_QUALITY, subsampling=0)


def demo_examples(seed: int = 0, count: int = 8, *, num_cameras: int = 5) -> Iterator[RenderedShot]:
    """The first ``count`` identity images of the demo plan, rendered in memory (with backgrounds)."""
    shots, people, cameras = plan_dataset(seed, 60, 44, num_cameras)
    for shot in [s for s in shots if s.pid > 0][:count]:
        yield render_shot(shot, people, cameras, with_background=True)
