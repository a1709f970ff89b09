"""The pinned environment imports cleanly: one OpenCV release for the three distributions that write cv2/."""

from __future__ import annotations

import importlib.metadata as metadata
import subprocess
import sys


OPENCV = ("opencv-python", "opencv-python-headless", "opencv-contrib-python")


def test_every_installed_opencv_distribution_is_the_same_release():
    import cv2

    versions = {}
    for name in OPENCV:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    assert "opencv-python" in versions  # deep-sort-realtime requires it by name
    assert len(set(versions.values())) == 1, versions
    assert cv2.__version__ == next(iter(versions.values())).rsplit(".", 1)[0]


def test_a_fresh_interpreter_imports_cv2_torchreid_and_the_weights():
    code = (
        "import warnings, cv2, torchreid; from augreid.imagenet import imagenet_weights; "
        "print(cv2.imread is not None, imagenet_weights().sha256[:8])"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error::ImportWarning", "-c", code], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "2f518e77"]


def test_mediapipe_imports_beside_that_opencv(extras):
    extras.module("mediapipe", "[pose]")
    out = subprocess.run(
        [sys.executable, "-c", "import cv2, mediapipe; print(mediapipe.__version__)"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "0.10.21"
