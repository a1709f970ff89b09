"""Shared by the synth tests: a small, fast configuration and readers of a synth output folder."""

from __future__ import annotations

import json
from pathlib import Path

from augreid.synth import SynthConfig, synthesize
from synth_double import PasteGenerator

K = 3
IDS = 5


def small_config(**changes) -> SynthConfig:
    """Few ids and poses, no worker processes: seconds per run."""
    # min_quality={}: the default PCKh filter (MediaPipe) is tested in tests/test_pckh_synth.py
    base = dict(
        num_poses=K,
        max_ids=IDS,
        batch_size=4,
        num_workers=0,
        writer_threads=2,
        kmeans_n_init=3,
        contact_rows=3,
        min_quality={},
    )
    return SynthConfig(**{**base, **changes})


def run(out, data, **kwargs):
    generator = kwargs.pop("generator", None) or PasteGenerator()
    config = kwargs.pop("config", None) or small_config()
    return synthesize(out, config, data=data, generator=generator, progress=False, echo=lambda _m: None, **kwargs)


def read_manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def image_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "bounding_box_train").iterdir())}
