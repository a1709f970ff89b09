"""Quality report of estimated keypoints: detection and joint visibility rates,
agreement with a reference CSV, and a contact sheet of skeletons drawn on images."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from augreid.data.imaging import draw_skeleton, write_png
from augreid.data.keypoints import FLIP_ORDER, KEYPOINT_NAMES, visible
from augreid.data.market import read_image
from augreid.data.pairs import is_pose_usable
from augreid.io import atomic_write_json, atomic_write_text


def _rate(count: int | float, total: int) -> float:
    return round(float(count) / total, 4) if total else 0.0


@dataclass
class SplitStats:
    images: int
    detected: int  # the estimator found a person (or, without that record, >= 1 joint kept)
    with_joints: int  # >= 1 joint kept
    usable: int  # both shoulders and both hips: what pose-transfer pairs need
    mean_joints: float  # kept joints per image
    joint_rates: dict[str, float]  # share of images with that joint kept

    def to_dict(self) -> dict:
        return {
            "images": self.images,
            "detected": self.detected,
            "detection_rate": _rate(self.detected, self.images),
            "with_joints": self.with_joints,
            "usable": self.usable,
            "usable_rate": _rate(self.usable, self.images),
            "mean_joints": round(self.mean_joints, 3),
            "joint_rates": self.joint_rates,
        }


def split_stats(poses: Sequence[np.ndarray], detected: Sequence[bool] | None = None) -> SplitStats:
    stack = np.stack(poses) if len(poses) else np.zeros((0, len(KEYPOINT_NAMES), 2), np.int32)
    present = visible(stack)  # (N, 18)
    with_joints = int(present.any(axis=1).sum())
    found = int(sum(bool(d) for d in detected)) if detected is not None else with_joints
    return SplitStats(
        images=len(stack),
        detected=found,
        with_joints=with_joints,
        usable=int(sum(is_pose_usable(p) for p in stack)),
        mean_joints=float(present.sum(axis=1).mean()) if len(stack) else 0.0,
        joint_rates={name: _rate(int(present[:, j].sum()), len(stack)) for j, name in enumerate(KEYPOINT_NAMES)},
    )


@dataclass
class PoseReport:
    splits: dict[str, SplitStats]
    detection_source: str  # "estimator" or "rows" (>= 1 joint), see SplitStats.detected

    @property
    def total(self) -> SplitStats | None:
        return self.splits.get("all")

    def to_dict(self) -> dict:
        return {"detection_source": self.detection_source, "splits": {k: v.to_dict() for k, v in self.splits.items()}}

    def format(self) -> str:
        """Markdown: one table of per-split rates, one of per-joint visibility."""
        names = list(self.splits)
        lines = [
            "| split | images | detected | with joints | usable (shoulders+hips) | mean joints |",
            "|---|---|---|---|---|---|",
        ]
        for name in names:
            s = self.splits[name]
            lines.append(
                f"| {name} | {s.images} | {s.detected} ({100 * _rate(s.detected, s.images):.1f}%) | {s.with_joints} | "
                f"{s.usable} ({100 * _rate(s.usable, s.images):.1f}%) | {s.mean_joints:.2f} |"
            )
        lines += ["", "Per-joint visibility (share of images with the joint kept):", ""]
        lines.append("| joint | " + " | ".join(names) + " |")
        lines.append("|---|" + "---|" * len(names))
        for joint in KEYPOINT_NAMES:
            lines.append(
                f"| {joint} | " + " | ".join(f"{100 * self.splits[n].joint_rates[joint]:.1f}%" for n in names) + " |"
            )
        if self.detection_source == "rows":
            lines += [
                "",
                "detected = rows with at least one kept joint (the estimator's own detections were not recorded).",
            ]
        return "\n".join(lines) + "\n"

    def write(self, json_path: str | Path | None = None, md_path: str | Path | None = None) -> None:
        if json_path is not None:
            atomic_write_json(json_path, self.to_dict())
        if md_path is not None:
            atomic_write_text(md_path, self.format())


def pose_report(
    poses: Mapping[str, np.ndarray],
    split_names: Mapping[str, Sequence[str]],
    detected: Mapping[str, bool] | None = None,
) -> PoseReport:
    """Per-split and overall rates. ``detected`` (name -> person found) is used when it covers every image."""
    every = [n for names in split_names.values() for n in names]
    covering = detected if detected is not None and all(n in detected for n in every) else None
    splits = {}
    for split, names in list(split_names.items()) + [("all", every)]:
        found = [covering[n] for n in names] if covering is not None else None
        splits[split] = split_stats([poses[n] for n in names], found)
    return PoseReport(splits, "estimator" if covering is not None else "rows")


# ---------------------------------------------------------------- agreement with a reference


def compare_keypoints(
    ours: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], names: Sequence[str] | None = None
) -> dict:
    """How far ``ours`` is from ``reference`` on the images both have.

    * ``mean_joint_distance_px``: Euclidean pixel distance averaged over joints present in both;
    * ``visibility_pattern_match``: share of rows whose set of present joints is identical;
    * ``joint_visibility_agreement``: share of (image, joint) cells that agree on present/missing;
    * ``exact_joint_match``: share of joints present in both with identical coordinates;
    * ``left_right_swapped_rows``: rows whose left/right joints are closer to the
      reference once swapped (a person seen from the back taken as seen from the front);
    * detection counts: rows with >= 1 joint in each, and in both.
    """
    names = sorted(set(ours) & set(reference)) if names is None else list(names)
    if not names:
        return {"rows": 0}
    a = np.stack([ours[n] for n in names]).astype(np.int64)
    b = np.stack([reference[n] for n in names]).astype(np.int64)
    va, vb = visible(a), visible(b)
    both = va & vb
    all_dist = np.sqrt(((a - b) ** 2).sum(axis=-1))  # (N, 18)
    dist = all_dist[both]
    row_a, row_b = va.any(axis=1), vb.any(axis=1)
    per_joint = {}
    for j, name in enumerate(KEYPOINT_NAMES):
        dj = all_dist[both[:, j], j]
        per_joint[name] = {
            "agreement": _rate(int((va[:, j] == vb[:, j]).sum()), len(names)),
            "present": {"ours": int(va[:, j].sum()), "reference": int(vb[:, j].sum())},
            "mean_distance_px": round(float(dj.mean()), 3) if dj.size else None,
        }
    return {
        "rows": len(names),
        "left_right_swapped_rows": _swapped_rows(a, b),
        "mean_joint_distance_px": round(float(dist.mean()), 4) if dist.size else None,
        "median_joint_distance_px": round(float(np.median(dist)), 4) if dist.size else None,
        "p95_joint_distance_px": round(float(np.percentile(dist, 95)), 4) if dist.size else None,
        "joints_compared": int(both.sum()),
        "exact_joint_match": _rate(int((dist == 0).sum()), int(both.sum())),
        "visibility_pattern_match": _rate(int((va == vb).all(axis=1).sum()), len(names)),
        "joint_visibility_agreement": _rate(int((va == vb).sum()), va.size),
        "rows_with_joints": {
            "ours": int(row_a.sum()),
            "reference": int(row_b.sum()),
            "both": int((row_a & row_b).sum()),
        },
        "joints_present": {"ours": int(va.sum()), "reference": int(vb.sum())},
        "per_joint": per_joint,
    }


def _swapped_rows(a: np.ndarray, b: np.ndarray) -> int:
    """Rows of ``a`` whose sided joints lie closer to ``b`` with left and right exchanged."""
    sided = [j for j in range(len(FLIP_ORDER)) if FLIP_ORDER[j] != j]
    swapped = a[:, list(FLIP_ORDER)]

    def mean_distance(x: np.ndarray) -> np.ndarray:
        both = visible(x[:, sided]) & visible(b[:, sided])
        d = np.sqrt(((x[:, sided] - b[:, sided]) ** 2).sum(-1))
        with np.errstate(invalid="ignore"):
            return np.where(both.any(1), (d * both).sum(1) / np.maximum(both.sum(1), 1), np.nan)

    as_is, flipped = mean_distance(a), mean_distance(swapped)
    return int((flipped < as_is).sum())  # nan compares False: rows without common sided joints never count


# ---------------------------------------------------------------- contact sheet


def skeleton_on(image: Image.Image, pose: np.ndarray, scale: int = 1) -> Image.Image:
    """A copy of the PIL ``image`` scaled by ``scale`` with ``pose`` (in original pixels) drawn on it."""
    w, h = image.size
    canvas = image.convert("RGB").resize((w * scale, h * scale), Image.Resampling.NEAREST)
    draw_skeleton(ImageDraw.Draw(canvas), pose, scale)
    return canvas


def _short(name: str) -> str:
    """``0001_c1s1_000001_00.jpg`` -> ``0001_c1s1``: what fits under a 64-128 px tile."""
    parts = Path(name).stem.split("_")
    return "_".join(parts[:2])[:14]


def contact_sheet(
    items: Sequence[tuple[str, str | Path, np.ndarray]],
    out_png: str | Path,
    *,
    count: int = 32,
    columns: int = 8,
    scale: int = 2,
    seed: int = 0,
    title: str | None = None,
) -> Path:
    """PNG grid of ``count`` random ``(name, image path, pose)`` items with skeletons drawn.

    Images with no kept joint get a red frame, so misses are as easy to judge as hits.
    """
    chosen = sorted(random.Random(seed).sample(range(len(items)), min(count, len(items))))
    tiles = []
    for index in chosen:
        name, path, pose = items[index]
        tile = skeleton_on(read_image(path), pose, scale)
        if not visible(pose).any():
            ImageDraw.Draw(tile).rectangle([0, 0, tile.width - 1, tile.height - 1], outline=(230, 0, 0), width=3)
        tiles.append((name, tile))
    if not tiles:
        raise ValueError("contact sheet needs at least one image")
    pad, caption = 4, 12
    tw = max(t.width for _, t in tiles)
    th = max(t.height for _, t in tiles)
    cols = min(columns, len(tiles))
    rows = -(-len(tiles) // cols)
    top = 16 if title else 0
    sheet = Image.new("RGB", (cols * (tw + pad) + pad, top + rows * (th + caption + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 2), title, fill=(0, 0, 0))
    for i, (name, tile) in enumerate(tiles):
        x = pad + (i % cols) * (tw + pad)
        y = top + pad + (i // cols) * (th + caption + pad)
        sheet.paste(tile, (x, y))
        draw.text((x, y + th), _short(name), fill=(60, 60, 60))
    return write_png(out_png, sheet, optimize=True)


def write_run_report(run, prefix: str = "pose", *, count: int = 32, seed: int = 0, scale: int = 2) -> dict[str, Path]:
    """``PREFIX-report.{json,md}`` and ``PREFIX-contact-sheet.png`` in the run's output folder.

    ``run`` is a :class:`augreid.pose_estimation.run.PoseRun`.
    """
    report = pose_report(run.poses, run.split_names(), run.detected)
    paths = {
        "json": run.out_dir / f"{prefix}-report.json",
        "markdown": run.out_dir / f"{prefix}-report.md",
        "sheet": run.out_dir / f"{prefix}-contact-sheet.png",
    }
    report.write(paths["json"], paths["markdown"])
    items = [(r.name, r.path, run.poses[r.name]) for r in run.records]
    if items and count > 0:
        contact_sheet(
            items,
            paths["sheet"],
            count=count,
            seed=seed,
            scale=scale,
            title=f"{prefix}: {min(count, len(items))} random images (seed {seed}); red frame = no joint kept",
        )
    else:
        paths.pop("sheet")
    return paths
