"""The contact sheet of ``augreid data sheet``: identities in rows, optionally with their keypoints drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from augreid.data.demo.common import IMAGE_H, IMAGE_W
from augreid.data.imaging import draw_skeleton, write_png
from augreid.data.keypoints import keypoint_candidates, read_keypoints_csv
from augreid.data.market import TRAIN, parse_market_name, read_image, resolve_market_root
from augreid.errors import DatasetError


# ---------------------------------------------------------------- contact sheet


def demo_contact_sheet(
    root: str | Path,
    out_png: str | Path,
    *,
    num_ids: int = 8,
    per_id: int = 10,
    split: str = TRAIN,
    skeleton: bool = True,
    zoom: int = 2,
) -> Path:
    """A PNG with ``num_ids`` identities in rows, their images across cameras (camera order).

    With ``skeleton=True`` each image is shown twice: plain, then with its keypoints drawn.
    Works for any Market-layout root with keypoint CSVs beside it (the demo or another set).
    """
    base = resolve_market_root(root)
    folder = base / split
    poses: dict[str, np.ndarray] = {}
    if skeleton:
        # Only unambiguous CSVs: with two train CSVs beside the data a sheet is still useful.
        for place in (base, base.parent):
            for matches in keypoint_candidates(place).values():
                if len(matches) == 1:
                    poses.update(read_keypoints_csv(matches[0]))
    by_pid: dict[int, list[Path]] = {}
    for path in sorted(folder.glob("*.jpg")):
        pid, cam = parse_market_name(path.name)
        if pid > 0:
            by_pid.setdefault(pid, []).append(path)
    if not by_pid:
        raise DatasetError(f"{folder}: no identity images to show")
    pids = sorted(by_pid)[:num_ids]
    cell_w, cell_h = IMAGE_W * zoom, IMAGE_H * zoom
    per_cell = 2 if skeleton else 1
    cols = per_id * per_cell
    sheet = Image.new("RGB", (cols * (cell_w + 2), len(pids) * (cell_h + 2)), (255, 255, 255))
    for row, pid in enumerate(pids):
        paths = sorted(by_pid[pid], key=lambda p: parse_market_name(p.name)[1])[:per_id]
        for col, path in enumerate(paths):
            img = read_image(path).resize((cell_w, cell_h), Image.Resampling.NEAREST)  # names a broken file
            x0, y0 = col * per_cell * (cell_w + 2), row * (cell_h + 2)
            sheet.paste(img, (x0, y0))
            if skeleton:
                drawn = img.copy()
                pose = poses.get(path.name)
                if pose is not None:
                    draw_skeleton(ImageDraw.Draw(drawn), pose, zoom, joint_radius=zoom, coloured_joints=True)
                sheet.paste(drawn, (x0 + cell_w + 2, y0))
    return write_png(out_png, sheet)
