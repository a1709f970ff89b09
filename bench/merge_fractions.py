"""One fractions report from the fractions.json files of runs made at different times.

The issue's budget runs a fractions recipe one step at a time (0.2 first, then
1.0, then the middle fractions), and stage folders do not survive a move to a
new machine: the committed ``fractions.json`` of each step is what remains.
``augreid.pipeline.fractions.merge_fraction_records`` checks that they belong
to the recipe (subset seed, re-ID seeds) and agree where they overlap. The
``runs.json`` and ``learning_curve.json`` beside each input (one row per trained
model, per curve point) are merged too, one row per fraction/arm/seed or
fraction/step, sorted by fraction.

    python bench/merge_fractions.py recipes/cuhk03-market-fractions.toml OUT_DIR A/fractions.json [B/fractions.json ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augreid.io import atomic_write_json, atomic_write_text
from augreid.pipeline.fractions import build_fractions_report, fractions_record, merge_fraction_records, plot_fractions
from augreid.pipeline.recipe import load_recipe
from augreid.pipeline.run_records import plot_learning_curve


def merge_rows(paths: list[Path], key: tuple[str, ...]) -> list[dict]:
    """The rows of every existing file in ``paths``; the same ``key`` twice must hold the same row."""
    merged: dict[tuple, dict] = {}
    for path in paths:
        if not path.is_file():
            continue
        for row in json.loads(path.read_text(encoding="utf-8")):
            ident = tuple(row[k] for k in key)
            if merged.setdefault(ident, row) != row:
                sys.exit(f"{path}: {dict(zip(key, ident))} differs from an earlier file's row")
    order = {"baseline": 0, "copy": 1, "augmented": 2}
    return sorted(
        merged.values(), key=lambda r: (r["fraction"], order.get(r.get("arm"), 9), r.get("seed", 0), r.get("step", 0))
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("files", type=Path, nargs="+")
    args = ap.parse_args()
    recipe = load_recipe(args.recipe).settings
    records = {str(p): json.loads(p.read_text(encoding="utf-8")) for p in args.files}
    rows = merge_fraction_records(recipe, records)
    args.out.mkdir(parents=True, exist_ok=True)
    merged = {
        name: merge_rows([p.parent / name for p in args.files], key)
        for name, key in (("runs.json", ("fraction", "arm", "seed")), ("learning_curve.json", ("fraction", "step")))
    }
    plots = {"fractions": plot_fractions(rows, args.out / "fractions.png")}
    if merged["learning_curve.json"]:
        plots["curve"] = plot_learning_curve(merged["learning_curve.json"], args.out / "learning_curve.png")
    atomic_write_json(args.out / "fractions.json", fractions_record(recipe, rows))
    for name, found in merged.items():
        if found:
            atomic_write_json(args.out / name, found)
    doc = build_fractions_report(recipe, rows, merged["runs.json"], merged["learning_curve.json"], plots, history={})
    atomic_write_text(args.out / "report.md", doc.to_markdown(args.out))
    print(f"merged {len(rows)} fraction(s) into {args.out}")


if __name__ == "__main__":
    main()
