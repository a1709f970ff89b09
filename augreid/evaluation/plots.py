"""PNG figures of a comparison: CMC curves and retrieval strips."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageDraw, ImageOps

from augreid.data.imaging import write_figure, write_png
from augreid.data.market import read_image

GREEN, RED, BLUE, WHITE = (0, 170, 0), (220, 0, 0), (40, 90, 230), (255, 255, 255)


def plot_cmc(curves: dict[str, np.ndarray], path: str | Path, title: str = "CMC", max_rank: int = 50) -> Path:
    """One CMC curve per entry (rank 1..max_rank, matching rate in %); the keys are the legend labels."""
    fig = Figure(figsize=(6, 4), dpi=120)  # a bare Figure, not pyplot: no global backend or figure list
    ax = fig.subplots()
    for name, cmc in curves.items():
        cmc = np.asarray(cmc)[:max_rank] * 100
        ranks = np.arange(1, len(cmc) + 1)
        ax.plot(ranks, cmc, marker="o" if len(cmc) <= 20 else None, markersize=3, label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return write_figure(path, fig)


def _framed(image_path: str | Path, size: tuple[int, int], colour: tuple[int, int, int], border: int):
    width, height = size
    img = read_image(image_path).resize((width - 2 * border, height - 2 * border), Image.Resampling.BILINEAR)
    return ImageOps.expand(img, border=border, fill=colour)


def retrieval_strip(
    query_paths: Sequence[str | Path],
    top_paths: Sequence[Sequence[str | Path]],
    correct: Sequence[Sequence[bool]],
    path: str | Path,
    size: tuple[int, int] = (64, 128),
    border: int = 3,
    title: str = "",
) -> Path:
    """One row per query: the query (blue frame), then its ranked matches framed green (correct) or red."""
    width, height = size
    gap, caption = 12, 16 if title else 0
    columns = 1 + max((len(t) for t in top_paths), default=0)
    canvas = Image.new("RGB", (columns * (width + 2) + gap, caption + len(query_paths) * (height + 14)), WHITE)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((4, 2), title, fill=(0, 0, 0))
    for row, (query, tops, flags) in enumerate(zip(query_paths, top_paths, correct)):
        y = caption + row * (height + 14)
        canvas.paste(_framed(query, size, BLUE, border), (0, y))
        draw.text((2, y + height), "query", fill=(0, 0, 0))
        for col, (item, ok) in enumerate(zip(tops, flags), start=1):
            x = gap + col * (width + 2)
            canvas.paste(_framed(item, size, GREEN if ok else RED, border), (x, y))
            draw.text((x + 2, y + height), str(col), fill=(0, 0, 0))
    return write_png(path, canvas)
