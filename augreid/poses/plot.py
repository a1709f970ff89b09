"""Pictures of target poses: skeletons drawn with matplotlib (file output only)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from augreid.data.imaging import write_figure
from augreid.data.keypoints import LIMBS
from augreid.poses.normalize import joint_mask
from augreid.poses.targets import TargetPoses


def _draw_skeleton(ax: Axes, pose: np.ndarray, *, color: str | tuple[float, ...], width: float, alpha: float) -> None:
    pose = np.asarray(pose, dtype=np.float64)
    present = joint_mask(pose)
    for a, b in LIMBS:
        if present[a] and present[b]:
            ax.plot([pose[a, 1], pose[b, 1]], [pose[a, 0], pose[b, 0]], color=color, lw=width, alpha=alpha)
    ax.scatter(pose[present, 1], pose[present, 0], s=6 * width, color=color, alpha=alpha, zorder=3)


def plot_targets(targets: TargetPoses, path: str | Path, *, dpi: int = 100) -> Path:
    """One panel per target: its skeleton in black over a few cluster members in colour."""
    h, w = targets.shape
    k = max(len(targets), 1)
    # A bare Figure, not pyplot: no global backend or figure list to manage.
    fig = Figure(figsize=(1.4 * k, 1.4 * h / w + 0.5))
    axes = fig.subplots(1, k, squeeze=False)
    colours = matplotlib.colormaps["tab10"]
    for i, ax in enumerate(axes[0]):
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= len(targets):
            continue
        if i < len(targets.examples):
            for j, member in enumerate(targets.examples[i]):
                _draw_skeleton(ax, member, color=colours(j % 10), width=0.8, alpha=0.45)
        _draw_skeleton(ax, targets.poses[i], color="black", width=2.0, alpha=1.0)
        title = f"pose {i}"
        if targets.sizes is not None:
            title += f"\nn={targets.sizes[i]}"
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    return write_figure(path, fig, dpi=dpi)
