"""Does another way of moving the condition's pixels take the target pose better than ``warp``?

    OMP_NUM_THREADS=1 python bench/bench_warp_variants.py [--data ROOT] [--pairs 300] \
        [--out bench/results/warp_variants]

Scores, on eval-gen's held-out pairs (test identities, ``build_pairs`` seed 0; condition keypoints from
the dataset's test keypoint file), PCKh (MediaPipe) and the detection rate of:

* ``copy condition``: the trivial baseline;
* ``warp``: ``generators.common.parts.warp_person`` as shipped;
* ``warp, whole person inpainted``: the inpainted region also covers the condition's parts that the
  target lacks (``warp`` inpaints only the parts it moves), so no unmoved limb is left behind;
* ``warp, silhouette``: every pixel of MediaPipe's person segmentation goes to its nearest part, the
  whole silhouette is inpainted, and parts carry their silhouette pixels only (no background);
* ``thin-plate spline``: one smooth warp of the whole image through the shared joints and a fixed
  border (scikit-image's ``ThinPlateSplineTransform``), with no cut and no inpainting.

The variants live here, not in the generator: they are what was tried and measured before shipping.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augreid.data.keypoints import visible
from augreid.data.sources import resolve_source
from augreid.io import atomic_write_json, atomic_write_text
from augreid.pose_estimation.mediapipe_estimator import import_mediapipe
from augreid.pose_estimation.pckh import LABEL, pckh_of_images
from generators.common.quality import held_out_pairs, load_pair
from generators.common import parts as P

WIDTHS = P.PartWidths()


def inpainted(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    grown = cv2.dilate(region.astype(np.uint8) * 255, np.ones((5, 5), np.uint8))
    return cv2.inpaint(image, grown, 3, cv2.INPAINT_TELEA)


def whole_person(image: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    parts = P.body_parts(source, target, image.shape[:2], WIDTHS)
    if not parts:
        return image.copy()
    every = P.body_parts(source, source, image.shape[:2], WIDTHS)  # all of the condition's parts
    region = np.maximum.reduce([p.mask for p in every + parts]) > 0
    return P.paste_parts(inpainted(image, region), image, [(p.mask, p.to_target) for p in parts], WIDTHS.feather)


class Silhouette:
    def __init__(self) -> None:
        mp = import_mediapipe()
        self.pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True)

    def __call__(self, image: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        parts = P.body_parts(source, target, image.shape[:2], WIDTHS)
        if not parts:
            return image.copy()
        every = P.body_parts(source, source, image.shape[:2], WIDTHS)
        person = np.maximum.reduce([p.mask for p in every]) > 0
        found = self.pose.process(np.ascontiguousarray(image)).segmentation_mask
        silhouette = person if found is None else found > 0.5
        # Nearest part by distance to its mask; ties go to the part painted last (arms over the torso).
        far = np.stack([cv2.distanceTransform((p.mask == 0).astype(np.uint8), cv2.DIST_L2, 3) for p in every])
        owner = len(every) - 1 - far[::-1].argmin(0)
        names = [p.name for p in every]
        moves = [(((owner == names.index(p.name)) & silhouette).astype(np.uint8) * 255, p.to_target) for p in parts]
        return P.paste_parts(inpainted(image, silhouette | person), image, moves, WIDTHS.feather)


def thin_plate(image: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    from skimage.transform import ThinPlateSplineTransform, warp

    h, w = image.shape[:2]
    both = visible(source) & visible(target)
    xs, ys = np.linspace(0, w - 1, 4), np.linspace(0, h - 1, 7)
    border = np.array([(x, y) for x in xs for y in (0, h - 1)] + [(x, y) for x in (0, w - 1) for y in ys[1:-1]])
    src = np.vstack([source[both][:, ::-1], border]).astype(np.float64)
    dst = np.vstack([target[both][:, ::-1], border]).astype(np.float64)
    _, keep = np.unique(np.round(dst, 1), axis=0, return_index=True)
    keep = np.sort(keep)
    inverse = ThinPlateSplineTransform.from_estimate(dst[keep], src[keep])  # output pixel -> condition pixel
    if both.sum() < 3 or not inverse:
        return image.copy()
    out = warp(image, inverse, output_shape=(h, w), order=1, mode="edge", preserve_range=True)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="dataset root (default: the embedded demo)")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--out", default="bench/results/warp_variants")
    args = parser.parse_args()
    source = resolve_source(args.data)
    pairs, records, poses = held_out_pairs(source, pairs_csv=None, max_pairs=args.pairs, seed=0)
    items = [load_pair(a, b, records, poses, (128, 64)) for a, b in pairs]
    targets = np.stack([it.target_pose for it in items])
    methods: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
        "copy condition": lambda image, s, t: image,
        "warp": lambda image, s, t: P.warp_person(image, s, t, WIDTHS)[0],
        "warp, whole person inpainted": whole_person,
        "warp, silhouette": Silhouette(),
        "thin-plate spline": thin_plate,
    }
    rows = {}
    for name, method in methods.items():
        start = time.perf_counter()
        images = [method(it.condition_image, it.condition_pose, it.target_pose) for it in items]
        rows[name] = {**pckh_of_images(images, targets).summary(), "seconds": round(time.perf_counter() - start, 1)}
        print(f"{name:30s} {rows[name]['pckh']} {rows[name]['detection_rate']}", flush=True)
    root = Path(source.root)  # the Market-1501-v15.09.15 folder sits inside the dataset's own
    data = (
        "embedded demo" if source.is_demo else (root.parent.name if root.name.startswith("Market-1501") else root.name)
    )
    report = {
        "dataset": data,
        "pairs": len(items),
        "pair_source": "build_pairs(query + gallery, seed 0)",
        "methods": rows,
    }
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), report)
    lines = [
        f"# Ways of moving the condition's pixels: {data}, {len(items)} held-out pairs",
        "",
        "`bench/bench_warp_variants.py`: the shipped `warp` against three other ways of moving the condition",
        "image's pixels (its docstring says what each does), with the condition's keypoints from the dataset.",
        "PCKh (MediaPipe) at 0.5 x head size, as eval-gen scores it.",
        "",
        f"| method | {LABEL} | person detected | {LABEL} where detected |",
        "|---|---|---|---|",
    ]
    for name, row in rows.items():
        where = "-" if row["pckh_detected"] is None else f"{row['pckh_detected']:.3f}"
        lines.append(f"| {name} | {row['pckh']:.3f} | {100 * row['detection_rate']:.0f} % | {where} |")
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
