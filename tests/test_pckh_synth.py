"""synth's default quality filter: PCKh (MediaPipe) of each image against its target pose."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from synth_double import PasteGenerator

from augreid.errors import AugreidError
from augreid.pose_estimation.pckh import LABEL
from augreid.synth import SynthConfig, parse_min_quality, synthesize
from augreid.synth.config import DEFAULT_MIN_PCKH

K, IDS = 3, 5


class GreyGenerator(PasteGenerator):
    """Ignores its inputs: a flat grey image, in which no estimator can find a person."""

    @torch.no_grad()
    def generate_outputs(self, condition, target_maps, condition_poses=None):
        return {"disks": torch.zeros_like(condition), "paste": torch.zeros_like(condition)}

    @torch.no_grad()
    def generate(self, condition, target_maps, condition_poses=None):
        return torch.zeros_like(condition)


def config(**changes) -> SynthConfig:
    base = {
        "num_poses": K,
        "max_ids": IDS,
        "batch_size": 4,
        "num_workers": 0,
        "writer_threads": 2,
        "kmeans_n_init": 3,
        "contact_rows": 3,
    }
    return SynthConfig(**{**base, **changes})


def run(out: Path, data: Path, generator=None, cfg: SynthConfig | None = None):
    return synthesize(
        out, cfg or config(), data=data, generator=generator or PasteGenerator(), progress=False, echo=lambda _m: None
    )


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def mediapipe_installed(extras):
    extras.module("mediapipe", "[pose]")


def test_the_default_filter_is_pckh_and_none_turns_filters_off() -> None:
    # The default the README documents ("drops those whose PCKh (MediaPipe) is below 0.2").
    assert SynthConfig().min_quality == {"pckh": 0.2}
    assert parse_min_quality(["none"]) == {}
    assert parse_min_quality(["pckh=0.4,identity=0.2"]) == {"pckh": 0.4, "identity": 0.2}


def test_default_filter_drops_low_pckh_and_reports_it(mediapipe_installed, demo_root, tmp_path) -> None:
    result = run(tmp_path / "out", demo_root)
    summary = json.loads((tmp_path / "out" / "synth.json").read_text())
    kept, rejected = rows(tmp_path / "out" / "manifest.jsonl"), rows(tmp_path / "out" / "rejected.jsonl")
    assert len(kept) + len(rejected) == IDS * K == summary["counts"]["planned"]
    assert kept and rejected  # the paste double makes both: otherwise the checks below check nothing
    assert summary["counts"]["removed_by_filter"] == {"pckh": len(rejected)}
    assert all(r["quality"]["pckh"] >= DEFAULT_MIN_PCKH for r in kept)
    assert all(r["quality"]["pckh"] < DEFAULT_MIN_PCKH and r["failed"] == ["pckh"] for r in rejected)
    pckh = summary["quality"]["pckh"]
    assert pckh["label"] == LABEL and pckh["threshold"] == DEFAULT_MIN_PCKH and "head size" in pckh["head_size"]
    detected = [r["quality"]["person_detected"] for r in kept + rejected]
    assert pckh["person_detected_rate"] == pytest.approx(sum(detected) / len(detected), abs=1e-4)
    assert result.counts["kept"] == len(kept)


def test_images_without_a_person_are_all_dropped(mediapipe_installed, demo_root, tmp_path) -> None:
    result = run(tmp_path / "grey", demo_root, generator=GreyGenerator())
    summary = json.loads((tmp_path / "grey" / "synth.json").read_text())
    assert result.counts["kept"] == 0
    assert summary["counts"]["removed_by_filter"]["pckh"] == IDS * K
    assert summary["quality"]["pckh"]["person_detected_rate"] == 0.0
    assert summary["quality"]["pckh"]["mean"] == 0.0
    assert not list((tmp_path / "grey" / "bounding_box_train").glob("*.jpg"))


def test_without_mediapipe_the_default_filter_fails_early_and_no_filter_works(demo_root, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # `import mediapipe` fails as if absent
    with pytest.raises(AugreidError, match="pose"):
        run(tmp_path / "a", demo_root)
    assert not list((tmp_path / "a").glob("bounding_box_train/*.jpg"))
    result = run(tmp_path / "b", demo_root, cfg=config(min_quality={}))
    assert result.counts["kept"] == IDS * K
