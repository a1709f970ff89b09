"""The estimator interface: one RGB image in, one OpenPose-18 pose out.

Callers (``run.py``, the CLI, the benchmark) only see :class:`EstimatorSpec`, a
picklable name + options pair, so a worker process can build its own estimator
and a new estimator (an ONNX model file the user supplies, say) is added by
writing one class and one :func:`register_estimator` line, without touching
any caller.
"""

from __future__ import annotations

import abc
import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from augreid.errors import AugreidError, ConfigError
from augreid.registry import Registry

POSE_EXTRA_HINT = "install the optional extra with: pip install 'augreid[pose]'"


class MissingExtraError(AugreidError):
    """An optional dependency (an extra) is not installed or is the wrong version."""


@dataclass(frozen=True)
class PoseEstimate:
    """One image's result: ``pose`` is ``(18, 2)`` int32 ``(y, x)``, -1 = missing."""

    pose: np.ndarray
    detected: bool  # the estimator found a person (its joints may still all be dropped)


class PoseEstimator(abc.ABC):
    """Estimates OpenPose-18 keypoints of the (single) person in an image crop.

    Constructor keyword arguments are the estimator's options. ``augreid pose``
    passes ``min_detection_confidence``, ``visibility_threshold`` and
    ``drop_outside``; :func:`augreid.pose_estimation.mapping.landmarks_to_pose`
    applies the last two to any estimator's landmarks.
    """

    name: str = ""

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`MissingExtraError` when the estimator's dependencies are absent."""

    @abc.abstractmethod
    def estimate(self, image: np.ndarray) -> PoseEstimate:
        """``image``: ``(H, W, 3)`` uint8 RGB. Coordinates of the result are pixels of that image."""

    def close(self) -> None:
        """Release native resources; the estimator is unusable afterwards."""

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# name -> class, or "module:attribute" imported on first use so that listing
# estimators never imports their heavy dependencies.
_REGISTRY: dict[str, type[PoseEstimator] | str] = {
    "mediapipe": "augreid.pose_estimation.mediapipe_estimator:MediaPipeEstimator"
}
_ESTIMATORS: Registry[type[PoseEstimator]] = Registry("pose estimator", _REGISTRY)


def register_estimator(name: str, target: type[PoseEstimator] | str) -> None:
    """Make ``name`` usable in :class:`EstimatorSpec` (and ``augreid pose --estimator``)."""
    _ESTIMATORS.register(name, target)


def estimator_names() -> list[str]:
    return _ESTIMATORS.names()


def estimator_class(name: str) -> type[PoseEstimator]:
    return _ESTIMATORS.get(name)


@dataclass(frozen=True)
class EstimatorSpec:
    """Which estimator, with which options; picklable, and recorded with every run."""

    name: str = "mediapipe"
    options: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Fail early, before any work, when the estimator cannot be built."""
        estimator_class(self.name).check_available()

    def build(self) -> PoseEstimator:
        cls = estimator_class(self.name)
        try:
            inspect.signature(cls).bind(**self.options)
        except TypeError as err:
            raise ConfigError(f"bad options for pose estimator {self.name!r}: {err}") from None
        return cls(**self.options)

    def describe(self) -> dict[str, Any]:
        """Name and every option in effect (the estimator's defaults filled in), as recorded with a run."""
        options = {**_default_options(estimator_class(self.name)), **self.options}
        return {"name": self.name, "options": dict(sorted(options.items()))}


def _default_options(cls: type[PoseEstimator]) -> dict[str, Any]:
    parameters = inspect.signature(cls.__init__).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name: p.default for p in parameters if p.kind in named and p.default is not inspect.Parameter.empty}
