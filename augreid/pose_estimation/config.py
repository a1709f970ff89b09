"""Settings of ``augreid pose``: one dataclass, loaded like every command's (``augreid.settings``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augreid import settings


@dataclass
class PoseConfig:
    estimator: str = "mediapipe"  # a registered pose estimator; mediapipe needs the optional [pose] extra
    min_detection_confidence: float = 0.5  # person detector threshold
    visibility_threshold: float = 0.5  # a landmark less visible than this is -1
    drop_outside: bool = True  # landmarks outside the frame: -1 (true) or clipped to the border (false)
    workers: int = 1  # processes estimating in parallel
    prefix: str = "pose"  # files are PREFIX-annotation-{train,test}.csv, PREFIX-report.md, ...
    report: bool = True  # write PREFIX-report.{md,json} and PREFIX-contact-sheet.png
    sheet_count: int = 32  # images on the contact sheet
    seed: int = 0  # of the contact sheet's random choice

    def problems(self) -> list[str]:
        problems = []
        for key in ("min_detection_confidence", "visibility_threshold"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                problems.append(f"{key}: must be in [0, 1], got {getattr(self, key)}")
        for key in ("workers", "sheet_count"):
            if getattr(self, key) < 1:
                problems.append(f"{key}: must be at least 1, got {getattr(self, key)}")
        if not self.prefix or "/" in self.prefix:
            problems.append(f"prefix: must be a plain file-name prefix, got {self.prefix!r}")
        return problems

    def estimator_options(self) -> dict[str, Any]:
        return {
            "min_detection_confidence": self.min_detection_confidence,
            "visibility_threshold": self.visibility_threshold,
            "drop_outside": self.drop_outside,
        }


def resolve_pose_config(config_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PoseConfig:
    """Defaults, then ``config_file`` (top level or its ``[pose]`` table), then ``overrides`` (``None`` = not given)."""
    return settings.load(PoseConfig, settings.command_layers(config_file, "pose", overrides), what="pose settings")
