"""``augreid eval-gen`` in full: the pixel scores of ``generators.common.quality`` plus the
evaluation-layer scores that need ImageNet and re-ID models.

For every named output of the generator and the two trivial baselines:

* SSIM, mask-SSIM, PSNR, masked L1 on held-out pairs of test identities
  (``generators.common.quality``);
* realism, "FID-MNv2" and KID against real test images, with the real-vs-real
  floor (``augreid.evaluation.realism``); never called FID;
* pose fidelity, PCKh (MediaPipe) and the detection rate, with the real target
  images for reference (``augreid.evaluation.pose_fidelity``);
* identity retention, rank-1 and mAP, with a re-ID model trained on the training
  identities (``augreid.evaluation.identity``); only when a model is given.

The realism reference is split by identity: real test images of odd pids are
the reference, those of even pids the floor's other half; images of the scored
pairs are in neither (the copy-condition baseline would otherwise be scored
against its own images).
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from augreid.data import build_pairs, read_image
from augreid.data.pose import scale_pose
from augreid.data.sources import resolve_source
from augreid.errors import ConfigError
from augreid.evaluation import identity as idm
from augreid.evaluation import pose_fidelity as pf
from augreid.evaluation import realism as rm
from generators.base import Generator, load_generator, to_tensor_image, to_uint8_image
from generators.common import quality

MAX_REAL_PER_HALF = 1000


def load_uint8(path: Path, size: tuple[int, int]) -> np.ndarray:
    """An image as uint8 ``(H, W, 3)`` at ``size`` (H, W)."""
    return load_uint8_sized(path, size)[0]


def load_uint8_sized(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """:func:`load_uint8` and the file's own ``(H, W)``, which its keypoints are in, from one read."""
    img = read_image(path)
    own = (img.size[1], img.size[0])
    if own != tuple(size):
        img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8), own


def image_size(path: Path) -> tuple[int, int]:
    """``(H, W)`` of an image file, from its header."""
    with Image.open(path) as img:
        return img.size[1], img.size[0]


def real_halves(
    dataset, size: tuple[int, int], seed: int, exclude: AbstractSet[str] = frozenset()
) -> tuple[np.ndarray, np.ndarray, str]:
    """Real test images (query + gallery, no distractors, none of ``exclude``) split by pid parity:
    (even, odd, description). The scored pairs' own images are excluded, so that no method's
    images (the copy-condition baseline's are real ones) reappear in the reference."""
    people = [r for r in (*dataset.query, *dataset.gallery) if r.pid > 0 and r.name not in exclude]
    rng = np.random.default_rng(seed)
    halves = []
    for parity in (0, 1):
        records = [r for r in people if r.pid % 2 == parity]
        if len(records) > MAX_REAL_PER_HALF:
            records = [records[i] for i in sorted(rng.choice(len(records), MAX_REAL_PER_HALF, replace=False))]
        halves.append(np.stack([load_uint8(r.path, size) for r in records]))
    return halves[0], halves[1], "real test images of odd pids not in any scored pair; floor: those of even pids"


def realism_section(
    images: dict[str, np.ndarray], source, size, *, net, device: str, seed: int, exclude: AbstractSet[str] = frozenset()
) -> dict[str, Any]:
    try:
        feature_net = rm.default_feature_net() if net is None else net
    except ConfigError as err:
        return {"name": rm.NAME, "disclaimer": rm.DISCLAIMER, "skipped": str(err)}
    real_a, real_b, reference = real_halves(source.load(), size, seed, exclude)
    section = rm.realism_scores(images, real_a, real_b, net=feature_net, device=device, seed=seed)
    section["reference"] = reference
    return section


def identity_queries(generator, source, *, max_queries: int, seed: int, batch_size: int, mean_image: np.ndarray):
    """Synthetic images of training identities from training pairs: (images per method, pids, condition names)."""
    dataset = source.load()
    poses = source.train_poses()
    size = tuple(generator.image_size)
    by_name = dataset.by_name("bounding_box_train")
    pairs = build_pairs(dataset.train, poses, max_pairs=max_queries or None, seed=seed)
    if not pairs:
        raise ConfigError(f"identity retention: no training pairs with keypoints in {source.root}")
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in generator.output_names}
    conditions = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        loaded = [load_uint8_sized(by_name[a].path, size) for a, _ in chunk]
        cond = np.stack([image for image, _ in loaded])
        maps = [
            np.asarray(generator.render_pose(poses[b], source_size=image_size(by_name[b].path)), dtype=np.float32)
            for _, b in chunk
        ]
        sources = np.stack([scale_pose(poses[a], own, size) for (a, _), (_, own) in zip(chunk, loaded, strict=True)])
        result = generator.generate_outputs(
            torch.stack([to_tensor_image(c) for c in cond]), torch.from_numpy(np.stack(maps)), condition_poses=sources
        )
        for name in generator.output_names:
            outputs[name].append(to_uint8_image(result[name]))
        conditions.append(cond)
    images = {name: np.concatenate(v) for name, v in outputs.items()}
    images["copy condition"] = np.concatenate(conditions)
    images["mean training image"] = np.repeat(mean_image[None], len(pairs), axis=0)
    return images, [by_name[a].pid for a, _ in pairs], [a for a, _ in pairs]


def identity_section(
    generator, source, reid_model, *, device: str, seed: int, max_queries: int, batch_size: int, mean_image: np.ndarray
) -> dict[str, Any]:
    features = idm.ReidFeatures.load(reid_model, device)
    images, pids, names = identity_queries(
        generator, source, max_queries=max_queries, seed=seed, batch_size=batch_size, mean_image=mean_image
    )
    size = tuple(generator.image_size)
    gallery = idm.build_gallery(source.load().train, lambda p: load_uint8(p, size), features)
    return idm.identity_retention(images, pids, names, gallery, features)


def evaluate_generator(
    checkpoint,
    data_root: str | Path | None = None,
    *,
    out: str | Path,
    realism: bool = True,
    pose_fidelity: bool = True,
    reid_model: str | Path | None = None,
    identity_max_queries: int = 500,
    train_keypoints: str | Path | None = None,
    feature_net=None,
    more=None,
    **options: Any,
) -> dict[str, Any]:
    """Everything eval-gen reports; ``options`` go to ``generators.common.quality.evaluate_generator``
    (``pairs_csv``, ``test_keypoints``, ``max_pairs``, ``batch_size``, ``device``, ``seed``, ...).
    ``more(images, report) -> (sections, markdown lines)`` adds a caller's own scores (a benchmark's PCKh)."""
    device = options.get("device", "cpu")
    seed = options.get("seed", 0)
    generator = checkpoint if isinstance(checkpoint, Generator) else load_generator(checkpoint, device)
    source = resolve_source(data_root, train_keypoints=train_keypoints, test_keypoints=options.get("test_keypoints"))

    def extra(images: dict[str, np.ndarray], report: dict[str, Any], pairs: list[quality.EvalPair]) -> dict[str, Any]:
        sections: dict[str, Any] = {}
        text: list[str] = []
        size = tuple(generator.image_size)
        if realism:
            used = {row[k] for row in report["per_pair"] for k in ("condition", "target")}
            sections["realism"] = realism_section(
                images, source, size, net=feature_net, device=device, seed=seed, exclude=used
            )
            text.append(
                rm.markdown(sections["realism"])
                if "skipped" not in sections["realism"]
                else f"Realism ({rm.NAME}) skipped: {sections['realism']['skipped']}"
            )
        if pose_fidelity:
            sections["pose_fidelity"] = pf.pose_fidelity_section(
                images, pairs, list(generator.output_names), exact_keypoints=pf.exact_keypoints(source)
            )
            text.append(pf.markdown(sections["pose_fidelity"]))
        if reid_model is not None:
            sections["identity"] = identity_section(
                generator,
                source,
                reid_model,
                device=device,
                seed=seed,
                max_queries=identity_max_queries,
                batch_size=options.get("batch_size", 32),
                mean_image=images["mean training image"][0],
            )
            text.append(idm.markdown(sections["identity"]))
        if more is not None:
            own, lines = more(images, report)
            sections.update(own)
            text.extend(lines)
        sections["markdown_sections"] = text
        return sections

    return quality.evaluate_generator(generator, data_root, out=out, extra=extra, **options)
