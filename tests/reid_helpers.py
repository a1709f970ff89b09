"""Re-ID test helpers: tiny training settings and a stand-in synthetic folder."""

from __future__ import annotations

import json
from pathlib import Path

from augreid.data import load_market

TINY = {
    "height": 64,
    "width": 32,
    "epochs": 1,
    "batch_size": 16,
    "iters_per_epoch": 2,
    "workers": 0,
    "threads": 1,
    "evaluate": False,
}


def make_synthetic(
    real_root: Path, out: Path, every: int = 6, camera: str = "c7", fingerprint: str | None = None, pid_offset: int = 0
) -> Path:
    """A stand-in synthetic folder: mirrored real training images renamed to an unused camera."""
    from PIL import Image, ImageOps

    market = load_market(real_root)
    (out / "bounding_box_train").mkdir(parents=True)
    rows = []
    for record in market.train[::every]:
        pid = record.pid + pid_offset
        name = f"{pid:04d}_{camera}s1_{len(rows):06d}_00.jpg"
        with Image.open(record.path) as img:
            ImageOps.mirror(img).save(out / "bounding_box_train" / name)
        rows.append(
            json.dumps(
                {
                    "file": name,
                    "source": record.name,
                    "pid": pid,
                    "target_pose": None,
                    "generator_hash": "test",
                    "seed": 0,
                    "quality": 1.0,
                }
            )
        )
    (out / "manifest.jsonl").write_text("\n".join(rows) + "\n")
    (out / "synth.json").write_text(
        json.dumps(
            {"dataset_fingerprint": fingerprint or market.fingerprint(), "status": "complete", "num_images": len(rows)}
        )
    )
    return out
