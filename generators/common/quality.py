"""``augreid eval-gen``: image-quality scores of any generator on held-out pairs.

Pairs are pairs of *test* identities (query + gallery), built with
``build_pairs`` or read from a ``market-pairs-test.csv``-style file. For each
pair the generator renders the target image from the condition image and the
target pose; the outputs are compared with the real target image, as PG2 did:

* SSIM (scikit-image, Gaussian window sigma 1.5, population covariance, RGB);
* mask-SSIM: SSIM of both images multiplied by the target pose mask;
* PSNR in dB (capped at 100 for identical images);
* masked L1: mean absolute error inside the pose mask, images in [0, 1].

Scored methods: every named output of the generator (``output_names``: PG2's
``G1`` and ``refined``), and two trivial baselines that any generator must beat
to be useful: copying the condition image, and the mean training image. The
pose mask is the evaluation's own (``augreid.data.pose.pose_mask``, limb radius
4 px per 128 image rows), the same for every generator. Outputs:
``metrics.json``, ``metrics.md`` and ``contact_sheet.png`` (hardest and easiest
pairs).

Only the ``generators.base.Generator`` interface is used. Scores that need
higher layers (realism and identity retention need ImageNet and re-ID models)
are passed in as ``extra``: ``augreid.evaluation.generator_eval`` does that.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from augreid.data import build_pairs, pose_maps, pose_mask, read_pairs_csv
from augreid.data.imaging import write_png
from augreid.data.pose import scale_pose
from augreid.data.sources import resolve_source
from augreid.errors import DatasetError
from augreid.io import atomic_write_json, atomic_write_text
from augreid.progress import progress_bar
from generators.base import Generator, describe, load_generator, to_tensor_image, to_uint8_image
from generators.common.data import load_image
from generators.common.preview import grid_array, grid_rows, pose_image

METRICS = ("ssim", "mask_ssim", "psnr", "masked_l1")
PSNR_CAP = 100.0
BASELINES = ("copy condition", "mean training image")
MASK_RADIUS_PER_128_ROWS = 4.0  # PG2's M_B limb radius at 128x64

# extra(images, report, pairs) -> {section: JSON-able}: ``images`` maps every method
# (outputs and baselines) to its uint8 (N, H, W, 3) images of the scored pairs;
# ``pairs`` are those pairs as loaded (condition and target images, target poses).
ExtraScores = Callable[[dict[str, np.ndarray], dict[str, Any], list["EvalPair"]], dict[str, Any]]


def evaluation_mask(pose: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The pose mask the masked scores use, for any generator: ``float32 (H, W)``."""
    return pose_mask(pose, size, radius=max(1.0, MASK_RADIUS_PER_128_ROWS * size[0] / 128))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(
        structural_similarity(
            a, b, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
    )


def psnr(target: np.ndarray, image: np.ndarray) -> float:
    if np.array_equal(target, image):
        return PSNR_CAP
    return float(min(peak_signal_noise_ratio(target, image, data_range=255), PSNR_CAP))


def score_image(target: np.ndarray, image: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """All four scores of ``image`` against ``target`` (uint8 H x W x 3) with the target's pose mask."""
    m = mask.astype(np.float64)[:, :, None]
    masked_t = (target * m).round().astype(np.uint8)
    masked_i = (image * m).round().astype(np.uint8)
    diff = np.abs(target.astype(np.float64) - image.astype(np.float64)) / 255.0
    area = m.sum() * 3
    return {
        "ssim": ssim(target, image),
        "mask_ssim": ssim(masked_t, masked_i),
        "psnr": psnr(target, image),
        "masked_l1": float((diff * m).sum() / area) if area else float("nan"),
    }


@dataclass
class EvalPair:
    condition: str
    target: str
    condition_image: np.ndarray
    target_image: np.ndarray
    target_pose: np.ndarray
    condition_pose: np.ndarray  # handed to the generator (generators.base.Generator.generate)


def held_out_pairs(
    source, *, pairs_csv: str | Path | None, max_pairs: int, seed: int
) -> tuple[list[tuple[str, str]], dict[str, Any], dict[str, np.ndarray]]:
    dataset = source.load()
    poses = source.test_poses()
    records = {**dataset.by_name("query"), **dataset.by_name("bounding_box_test")}
    if pairs_csv is not None:
        pairs = read_pairs_csv(pairs_csv)
        unknown = [n for pair in pairs for n in pair if n not in records]
        if unknown:
            raise DatasetError(
                f"{pairs_csv}: {len(unknown)} names are not query/gallery images of {source.root} (first: {unknown[0]})"
            )
        missing = [n for pair in pairs for n in pair if n not in poses]
        if missing:
            raise DatasetError(f"{pairs_csv}: {len(missing)} images have no test keypoints (first: {missing[0]})")
        if max_pairs and len(pairs) > max_pairs:
            keep = np.random.RandomState(seed).choice(len(pairs), size=max_pairs, replace=False)
            pairs = [pairs[i] for i in sorted(keep)]
    else:
        people = [r for r in records.values() if r.pid > 0]  # distractors (pid 0) are not one identity
        pairs = build_pairs(people, poses, max_pairs=max_pairs or None, seed=seed)
    if not pairs:
        raise DatasetError(f"no held-out pairs in {source.root} (test identities with usable keypoints)")
    return pairs, records, poses


def mean_training_image(dataset, size: tuple[int, int], progress: bool) -> np.ndarray:
    total = np.zeros((size[0], size[1], 3), np.float64)
    for record in progress_bar(dataset.train, desc="mean training image", unit="img", disable=not progress):
        total += load_image(record.path, size)[0]
    return (total / max(len(dataset.train), 1)).round().astype(np.uint8)


def load_pair(name_a: str, name_b: str, records, poses, size) -> EvalPair:
    a, original_a = load_image(records[name_a].path, size)
    b, original_b = load_image(records[name_b].path, size)
    return EvalPair(
        name_a, name_b, a, b, scale_pose(poses[name_b], original_b, size), scale_pose(poses[name_a], original_a, size)
    )


def _image_size(generator: Generator) -> tuple[int, int]:
    """``(H, W)`` as a tuple of ints, whatever sequence a plug-in's ``image_size`` returns."""
    h, w = generator.image_size
    return int(h), int(w)


def evaluate_generator(
    checkpoint: str | Path | Generator,
    data_root: str | Path | None = None,
    *,
    out: str | Path,
    pairs_csv: str | Path | None = None,
    test_keypoints: str | Path | None = None,
    max_pairs: int = 500,
    batch_size: int = 32,
    device: str = "cpu",
    seed: int = 0,
    examples: int = 6,
    progress: bool = True,
    extra: ExtraScores | None = None,
) -> dict[str, Any]:
    """Score a generator on held-out pairs; writes metrics.json, metrics.md, contact_sheet.png into ``out``."""
    generator = checkpoint if isinstance(checkpoint, Generator) else load_generator(checkpoint, device)
    size = _image_size(generator)
    source = resolve_source(data_root, test_keypoints=test_keypoints)
    pairs, records, poses = held_out_pairs(source, pairs_csv=pairs_csv, max_pairs=max_pairs, seed=seed)
    dataset = source.load()
    mean_image = mean_training_image(dataset, size, progress)
    methods = [*generator.output_names, *BASELINES]
    per_pair: list[dict[str, Any]] = []
    kept: list[tuple[EvalPair, dict[str, np.ndarray]]] = []
    bar = progress_bar(total=len(pairs), desc="eval-gen", unit="pair", disable=not progress)
    for start in range(0, len(pairs), batch_size):
        batch = [load_pair(a, b, records, poses, size) for a, b in pairs[start : start + batch_size]]
        outputs = generate_batch(generator, batch)
        for item, out_images in zip(batch, outputs):
            mask = evaluation_mask(item.target_pose, size)
            candidates = {**out_images, "copy condition": item.condition_image, "mean training image": mean_image}
            scores = {m: score_image(item.target_image, candidates[m], mask) for m in methods}
            per_pair.append(
                {
                    "condition": item.condition,
                    "target": item.target,
                    "mask_area": float(mask.mean()),
                    **{m: scores[m] for m in methods},
                }
            )
            kept.append((item, candidates))
        bar.update(len(batch))
    bar.close()
    provenance = describe(generator)
    report = {
        "generator": provenance,
        "checkpoint": provenance["path"],
        "checkpoint_sha256": provenance["hash"],
        "checkpoint_step": provenance.get("step"),
        "preset": provenance.get("preset"),
        "trained_on_fingerprint": provenance.get("dataset_fingerprint"),
        "dataset_root": str(source.root),
        "dataset_fingerprint": dataset.fingerprint(),
        "pairs": len(pairs),
        "pair_source": str(pairs_csv)
        if pairs_csv
        else f"build_pairs(query + gallery, max_pairs={max_pairs}, seed={seed})",
        "image_size": list(size),
        "outputs": list(generator.output_names),
        "baselines": list(BASELINES),
        "ssim_settings": "skimage structural_similarity, gaussian_weights, sigma 1.5, use_sample_covariance False, RGB, data_range 255",
        "psnr_cap_db": PSNR_CAP,
        "masked_l1_scale": "images in [0, 1], mean over pose-mask pixels and channels",
        "mask": f"augreid.data.pose.pose_mask, radius {MASK_RADIUS_PER_128_ROWS:g} px per 128 rows",
        "methods": summarise(per_pair, methods),
        "per_pair": per_pair,
    }
    if extra is not None:
        images = {m: np.stack([candidates[m] for _, candidates in kept]) for m in methods}
        report.update(extra(images, report, [item for item, _ in kept]))
    out = Path(out)
    atomic_write_json(out / "metrics.json", report)
    atomic_write_text(out / "metrics.md", markdown_table(report))
    write_contact_sheet(out / "contact_sheet.png", kept, per_pair, generator, examples)
    return report


def generate_batch(generator: Generator, batch: list[EvalPair]) -> list[dict[str, np.ndarray]]:
    """Every named output of the generator for each pair, as uint8 images."""
    condition = torch.stack([to_tensor_image(p.condition_image) for p in batch])
    maps = torch.stack([torch.from_numpy(np.asarray(generator.render_pose(p.target_pose))) for p in batch])
    sources = np.stack([p.condition_pose for p in batch])
    generated = generator.generate_outputs(condition, maps, condition_poses=sources)
    outputs = {name: to_uint8_image(images) for name, images in generated.items()}
    return [{name: outputs[name][i] for name in generator.output_names} for i in range(len(batch))]


def summarise(per_pair: list[dict[str, Any]], methods: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for method in methods:
        summary[method] = {}
        for metric in METRICS:
            values = np.array([row[method][metric] for row in per_pair], dtype=np.float64)
            values = values[np.isfinite(values)]
            summary[method][metric] = {
                "mean": float(values.mean()) if len(values) else math.nan,
                "std": float(values.std()) if len(values) else math.nan,
                "median": float(np.median(values)) if len(values) else math.nan,
            }
    return summary


def markdown_table(report: dict[str, Any]) -> str:
    name = report.get("generator", {}).get("name", "generator")
    lines = [
        f"{name} quality on {report['pairs']} held-out pairs of {report['dataset_root']} "
        f"(fingerprint {report['dataset_fingerprint']}), checkpoint step {report['checkpoint_step']} "
        f"({report['preset']}, sha256 {report['checkpoint_sha256'][:12]}). Mean ± std over pairs.",
        "",
        "| method | SSIM ↑ | mask-SSIM ↑ | PSNR dB ↑ | masked L1 ↓ |",
        "|---|---|---|---|---|",
    ]
    for method, metrics in report["methods"].items():
        cells = [f"{metrics[m]['mean']:.4f} ± {metrics[m]['std']:.4f}" for m in ("ssim", "mask_ssim")]
        cells.append(f"{metrics['psnr']['mean']:.2f} ± {metrics['psnr']['std']:.2f}")
        cells.append(f"{metrics['masked_l1']['mean']:.4f} ± {metrics['masked_l1']['std']:.4f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines.append("")
    for section in report.get("markdown_sections", []):
        lines.extend([section, ""])
    return "\n".join(lines)


def write_contact_sheet(path: Path, kept, per_pair, generator: Generator, examples: int) -> Path:
    """Rows: the ``examples`` hardest then easiest pairs by the final output's SSIM;
    columns: condition | target pose | every named output | target."""
    names = list(generator.output_names)
    ranking = names[-1]
    size = _image_size(generator)
    order = np.argsort([row[ranking]["ssim"] for row in per_pair])
    k = min(examples, len(order))
    picks = list(order[:k]) + [i for i in order[::-1][:k] if i not in set(order[:k])]
    columns: list[list[torch.Tensor]] = [[] for _ in range(len(names) + 3)]
    for i in picks:
        item, images = kept[i]
        maps = torch.from_numpy(pose_maps(item.target_pose, size, radius=max(1.0, size[0] / 32)))
        row = [to_tensor_image(item.condition_image), pose_image(maps[None])[0]]
        row += [to_tensor_image(images[name]) for name in names] + [to_tensor_image(item.target_image)]
        for column, image in zip(columns, row):
            column.append(image)
    grid = grid_rows([torch.stack(c) for c in columns])
    sheet = Image.fromarray(grid_array(grid))
    h = size[0] + 2
    labelled = Image.new("RGB", (sheet.width + 150, sheet.height + 18), "white")
    labelled.paste(sheet, (0, 18))
    draw = ImageDraw.Draw(labelled)
    draw.text((2, 2), f"condition | pose | {' | '.join(names)} | target   ({ranking} SSIM)", fill="black")
    for row_index, i in enumerate(picks):
        label = ("hardest" if row_index < k else "easiest") + f" {per_pair[i][ranking]['ssim']:.3f}"
        draw.text((sheet.width + 4, 18 + row_index * h + h // 2 - 6), label, fill="black")
    return write_png(path, labelled)
