"""Pose fidelity in eval-gen: PCKh (MediaPipe) and the detection rate of every output and baseline.

MediaPipe (``augreid pose``'s estimator) runs on each generated image of the
held-out pairs; its joints are compared with the target keypoints at half a
head size (``augreid.pose_estimation.pckh``: head = 1.4 x neck-to-nose, joints
missing in the target excluded, undetected joints and people are misses). The
copy-condition baseline (a generator that ignores the pose) is scored against
the same targets, and the real target images show what the estimator reaches on
real photographs: a ceiling where the keypoints are exact (the demo dataset),
about 1.0 by construction where the keypoints came from MediaPipe itself
(cuhk03-market), where only the copy-condition baseline means anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from augreid.data.demo import is_demo_dataset
from augreid.errors import AugreidError
from augreid.pose_estimation import pckh
from generators.common.quality import EvalPair

REAL = "real target images"


def pose_fidelity_section(
    images: dict[str, np.ndarray], pairs: list[EvalPair], outputs: list[str], *, exact_keypoints: bool
) -> dict[str, Any]:
    """Scores of ``outputs`` and ``copy condition`` (arrays in ``images``) against the ``pairs``' target poses."""
    try:
        estimator = pckh.default_estimator()
    except AugreidError as err:
        return {"label": pckh.LABEL, "skipped": str(err)}
    targets = np.stack([pair.target_pose for pair in pairs])
    try:
        methods = {
            name: pckh.pckh_of_images(list(images[name]), targets, estimator).summary()
            for name in [*outputs, "copy condition"]
        }
        methods[REAL] = pckh.pckh_of_images([pair.target_image for pair in pairs], targets, estimator).summary()
    finally:
        estimator.close()
    return {
        "label": pckh.LABEL,
        "alpha": pckh.ALPHA,
        "head_size": pckh.HEAD_SIZE_DEFINITION,
        "methods": methods,
        "real_target_note": pckh.real_target_note(False if exact_keypoints else None),
    }


def exact_keypoints(source) -> bool:
    """The demo dataset's keypoints are exact (drawn, not estimated); ``source.root`` may be its Market folder."""
    root = Path(source.root)
    return bool(getattr(source, "is_demo", False)) or any(is_demo_dataset(p) for p in (root, root.parent))


def markdown(section: dict[str, Any]) -> str:
    if "skipped" in section:
        return f"{section['label']} skipped: {section['skipped']}"
    lines = [
        f"Pose fidelity: {section['label']} at {section['alpha']} x head size and the share of images in which "
        f"MediaPipe finds a person. {section['head_size']}. Not comparable with OpenPose-based PCKh. "
        f"Real target images: {section['real_target_note']}.",
        "",
        "| " + " | ".join(["method", *pckh.summary_columns(section["label"]), "images"]) + " |",
        "|---|---|---|---|---|",
    ]
    for method, m in section["methods"].items():
        lines.append("| " + " | ".join([method, *pckh.summary_cells(m), str(m["images"])]) + " |")
    return "\n".join(lines)
