"""Copy a run's report into bench/results without pictures of real people.

Research-use datasets (cuhk03-market) must not be redistributed, so contact
sheets and retrieval strips, which show dataset images, stay in the run folder;
plots and skeleton drawings are copied.

    python bench/export_report.py runs/cuhk03-market bench/results/cuhk03-market
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

SAFE = ("cmc.png", "target_poses.png")  # curves and skeletons only


def export(run_dir: Path, out: Path, wall_time: str | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    text = (run_dir / "report.md").read_text(encoding="utf-8")

    def keep(match: re.Match) -> str:
        caption, rel = match.group(1), match.group(2)
        name = Path(rel).name
        if name in SAFE:
            shutil.copyfile(run_dir / rel, out / name)
            return f"![{caption}]({name})"
        return f"*(picture `{rel}` not copied: it shows dataset images that may not be redistributed)*"

    text = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", keep, text)
    if wall_time:
        text = text.replace("## Timings", f"## Timings\n\nWall time of `augreid run`: {wall_time}.", 1)
    (out / "report.md").write_text(text, encoding="utf-8")
    for pattern in ("eval-*/comparison.json", "eval-gen-*/metrics.md", "synth-*/synth/synth.json"):
        for path in run_dir.glob(pattern):
            shutil.copyfile(path, out / path.name)


if __name__ == "__main__":
    export(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
