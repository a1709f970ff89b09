"""What ``augreid data import`` and ``augreid data check`` make of each importer's fake source tree.

Builds the small fake trees that ``tests/test_importers.py`` builds (its own
builders are imported, so the trees are the tests' trees: tiny flat-colour crops,
a few identities and cameras, never real images), imports each one with
``augreid data import`` and runs ``augreid data check`` on the view, both through
the command line in this process. Writes ``bench/results/datasets.md``: the counts
per split from ``import.json`` and ``data check``'s output, with the temporary
folder written as ``<tmp>``.

    python bench/datasets_report.py                 # writes bench/results/datasets.md
    python bench/datasets_report.py --out /tmp/datasets.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from typer.testing import CliRunner  # noqa: E402

# torchreid's import-time note (augreid has its own evaluator) would otherwise land in the cuhk03 output.
warnings.filterwarnings("ignore", message="Cython evaluation")

from augreid.cli import app  # noqa: E402
from augreid.data.importers.view import VIEW_FILE  # noqa: E402
from augreid.data.market import SPLITS  # noqa: E402
from test_importers import make_cuhk03_mat, make_cuhk03_np, make_duke, make_msmt17  # noqa: E402


@dataclass
class Case:
    """One importer on one fake tree: how to build it and the import command's arguments."""

    label: str
    fmt: str
    build: Callable[[Path], Path]  # tmp folder -> the SRC given to the import
    options: tuple[str, ...] = ()
    what: str = ""


CASES = [
    Case("msmt17 (V2)", "msmt17", lambda tmp: make_msmt17(tmp, "V2"), what="MSMT17_V2 lists, train + val"),
    Case("msmt17 (V1)", "msmt17", lambda tmp: make_msmt17(tmp, "V1"), what="MSMT17_V1 lists, train + val"),
    Case("cuhk03 (NP, detected)", "cuhk03", make_cuhk03_np, what="CUHK03-NP, Market layout as is"),
    Case("cuhk03 (NP, labeled)", "cuhk03", make_cuhk03_np, ("--split", "labeled"), "CUHK03-NP, labeled boxes"),
    Case(
        "cuhk03 (cuhk-03.mat, labeled)",
        "cuhk03",
        lambda tmp: make_cuhk03_mat(tmp / "cuhk03"),
        ("--split", "labeled"),
        "cuhk-03.mat through torchreid's reader and the new-protocol split files",
    ),
    Case("dukemtmc", "dukemtmc", make_duke, what="DukeMTMC-reID, Market layout as is"),
]


def run_case(case: Case, tmp: Path) -> dict:
    src = case.build(tmp / "src")
    out = tmp / "view"
    runner = CliRunner()
    imported = runner.invoke(app, ["data", "import", case.fmt, str(src), str(out), *case.options])
    if imported.exit_code != 0:
        raise SystemExit(f"{case.label}: import failed ({imported.exit_code}): {imported.output}")
    checked = runner.invoke(app, ["data", "check", str(out)])
    info = json.loads((out / VIEW_FILE).read_text())

    def tidy(text: str) -> str:
        return text.replace(str(tmp), "<tmp>").rstrip()

    return {
        "case": case,
        "info": info,
        "import_output": tidy(imported.output),
        "check_output": tidy(checked.output),
        "check_exit": checked.exit_code,
    }


def counts_cell(counts: dict) -> str:
    cams = ",".join(map(str, counts["cameras"])) or "-"
    return f"{counts['images']} / {counts['ids']} / {cams}"


def check_verdict(output: str, exit_code: int) -> str:
    lines = output.splitlines()
    errors = sum(line.startswith("error:") for line in lines)
    warned = sum(line.startswith("warning:") for line in lines)
    verdict = "OK" if exit_code == 0 else f"{errors} error(s), exit {exit_code}"
    return f"{verdict}, {warned} warning(s)"


def render(results: list[dict]) -> str:
    lines = [
        "# Dataset importers on their fake source trees",
        "",
        "Written by `python bench/datasets_report.py`. Each source is the small fake tree that",
        "`tests/test_importers.py` builds (its own builders: flat-colour 32x64 crops, a few identities and",
        "cameras, no real images), imported with `augreid data import FORMAT SRC OUT` and checked with",
        "`augreid data check OUT`. Counts are images / identities / cameras per split, from `OUT/import.json`.",
        "",
        "| importer | source | pid shift | bounding_box_train | query | bounding_box_test | `data check` |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        info, case = r["info"], r["case"]
        cells = [counts_cell(info["counts"][split]) for split in SPLITS]
        verdict = check_verdict(r["check_output"], r["check_exit"])
        lines.append(
            f"| {case.label} | {case.what} | {info['pid_shift']:+d} | " + " | ".join(cells) + f" | {verdict} |"
        )
    passed = sum(r["check_exit"] == 0 for r in results)
    seen = sorted(
        {
            line.removeprefix("warning: ")
            for r in results
            for line in r["check_output"].splitlines()
            if "warning:" in line
        }
    )
    lines += [
        "",
        f"{passed} of {len(results)} views pass `data check` with no error. Its warnings, over all views:",
        "",
    ]
    lines += [f"- {w}" for w in seen] or ["- none"]
    lines += ["", "(`augreid pose OUT` writes the keypoint CSVs a dataset lacks.) Below, each command's output."]
    for r in results:
        case = r["case"]
        option_text = (" " + " ".join(case.options)) if case.options else ""
        lines += [
            "",
            f"## {case.label}",
            "",
            f"`augreid data import {case.fmt} <tmp>/src <tmp>/view{option_text}`:",
            "",
            "```",
            r["import_output"],
            "```",
            "",
            f"`augreid data check <tmp>/view` (exit {r['check_exit']}):",
            "",
            "```",
            r["check_output"],
            "```",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "datasets.md")
    args = parser.parse_args()
    results = []
    for case in CASES:
        with tempfile.TemporaryDirectory(prefix="augreid-datasets-") as folder:
            results.append(run_case(case, Path(folder)))
            print(f"{case.label}: {check_verdict(results[-1]['check_output'], results[-1]['check_exit'])}")
    args.out.write_text(render(results))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
