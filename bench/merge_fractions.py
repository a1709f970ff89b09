"""One fractions report from the fractions.json files of runs made at different times.

The issue's budget runs a fractions recipe one step at a time (0.2 first, then
1.0, then the middle fractions), and stage folders do not survive a move to a
new machine: the committed ``fractions.json`` of each step is what remains.
``augreid.pipeline.fractions.merge_fraction_records`` checks that they belong
to the recipe (subset seed, re-ID seeds) and agree where they overlap.

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
    plot = plot_fractions(rows, args.out / "fractions.png")
    atomic_write_json(args.out / "fractions.json", fractions_record(recipe, rows))
    doc = build_fractions_report(recipe, rows, plot, history={})
    atomic_write_text(args.out / "report.md", doc.to_markdown(args.out))
    print(f"merged {len(rows)} fraction(s) into {args.out}")


if __name__ == "__main__":
    main()
