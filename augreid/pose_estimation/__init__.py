"""Body keypoint estimation for datasets that ship none (``augreid pose``).

The estimator (MediaPipe Pose by default) is an optional extra: importing this
package never imports it. ``pip install 'augreid[pose]'`` installs it.
"""

from augreid.pose_estimation.base import (
    EstimatorSpec,
    MissingExtraError,
    PoseEstimate,
    PoseEstimator,
    estimator_names,
    register_estimator,
)
from augreid.pose_estimation.mapping import MEDIAPIPE_TO_OPENPOSE, landmarks_to_pose

__all__ = [
    "EstimatorSpec",
    "MissingExtraError",
    "PoseEstimate",
    "PoseEstimator",
    "estimator_names",
    "register_estimator",
    "MEDIAPIPE_TO_OPENPOSE",
    "landmarks_to_pose",
]
