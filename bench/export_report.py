"""Copy a run's report into bench/results without pictures of real people or this machine's paths.

Research-use datasets (cuhk03-market) must not be redistributed, so contact
sheets and retrieval strips, which show dataset images, stay in the run folder;
plots and skeleton drawings are copied. Absolute paths in the copied text
(``$AUGREID_HOME``, the repository, the shared data folder) are rewritten to
names that mean the same on any machine. A fractions run's per-fraction files
get the fraction in their name (``comparison-p020.json``).

    python bench/export_report.py runs/cuhk03-market bench/results/cuhk03-market ["wall time note"]
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAFE = ("cmc.png", "target_poses.png", "fractions.png", "learning_curve.png")  # curves and skeletons only
PER_STAGE = ("eval-*/comparison.json", "eval-gen-*/metrics.md", "eval-gen-*/metrics.json", "synth-*/synth/synth.json")
PER_RUN = ("report-*/fractions.json", "report-*/runs.json", "report-*/learning_curve.json", "report-*/subset-*.json")


def portable_text(text: str) -> str:
    """This machine's absolute paths in ``text`` as ``$AUGREID_HOME/...``, ``../shared/...`` or repository-relative."""
    home = os.environ.get("AUGREID_HOME", str(Path.home() / ".cache" / "augreid"))
    for prefix, name in (
        (str(Path(home).resolve()), "$AUGREID_HOME"),
        (str((REPO.parent / "shared").resolve()), "../shared"),
        (str(REPO), "."),
    ):
        text = text.replace(prefix + "/", name + "/").replace(prefix, name)
    return text


def _target_name(path: Path, run_dir: Path) -> str:
    stage = path.relative_to(run_dir).parts[0]
    label = re.search(r"-(p\d{3})-[0-9a-f]+$", stage)
    return f"{path.stem}-{label.group(1)}{path.suffix}" if label else path.name


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
    (out / "report.md").write_text(portable_text(text), encoding="utf-8")
    for pattern in (*PER_STAGE, *PER_RUN):
        for path in sorted(run_dir.glob(pattern)):
            name = path.name if pattern in PER_RUN else _target_name(path, run_dir)
            (out / name).write_text(portable_text(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    export(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
