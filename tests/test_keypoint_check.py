"""A keypoint CSV with several bad rows: every problem is reported at once, by the reader and by ``data check``."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from augreid.cli import app
from augreid.data.keypoints import HEADER, KeypointProblems, read_keypoints_csv, scan_keypoints_csv
from augreid.errors import KeypointError


def _row(name: str, y: int = 5, x: int = 7) -> str:
    return f"{name}: [{', '.join([str(y)] * 18)}]: [{', '.join([str(x)] * 18)}]"


def _bad_csv(path, good_names=("0001_c1s1_000001_00.jpg",)):
    lines = [HEADER, *(_row(n) for n in good_names)]
    lines += [
        "0002_c1s1_000002_00.jpg [1, 2]",  # line 3: not three fields
        "0003_c1s1_000003_00.jpg: [1, 2]: [3, 4]",  # line 4: not 18 values
        "",  # blank lines are fine
        "0004_c1s1_000004_00.jpg: [x]: [1]",  # line 6: not JSON
        ": [" + ", ".join(["1"] * 18) + "]: [" + ", ".join(["1"] * 18) + "]",  # line 7: no name
        _row(good_names[0], 9, 9),  # line 8: duplicate of line 2
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"0005_c1s1_000005_00.jpg: [\xff]: [1]\n")  # line 9
    return path


BAD_LINES = (3, 4, 6, 7, 8, 9)


def test_the_reader_lists_every_bad_row_in_one_error(tmp_path):
    path = _bad_csv(tmp_path / "kp.csv")
    with pytest.raises(KeypointProblems) as caught:
        read_keypoints_csv(path)
    err = caught.value
    assert isinstance(err, KeypointError)  # the project's error hierarchy: one line at the command line
    assert [p.split(":")[1] for p in err.problems] == [str(n) for n in BAD_LINES]
    message = str(err)
    assert "\n" not in message and message.startswith(f"{path}: 6 problems: line 3: ")
    for n in BAD_LINES:
        assert f"line {n}:" in message
    assert "duplicate row for 0001_c1s1_000001_00.jpg (first on line 2)" in message
    assert "not UTF-8" in message


def test_scanning_keeps_the_good_rows_and_one_problem_reads_as_before(tmp_path):
    table, problems = scan_keypoints_csv(_bad_csv(tmp_path / "kp.csv"))
    assert list(table) == ["0001_c1s1_000001_00.jpg"] and len(problems) == len(BAD_LINES)
    assert table["0001_c1s1_000001_00.jpg"][0].tolist() == [5, 7]  # the first of the duplicate rows is kept
    one = tmp_path / "one.csv"
    one.write_text(f"{HEADER}\n{_row('a.jpg')}\na.jpg [1]\n")
    with pytest.raises(KeypointError, match=r"one\.csv:3: expected"):
        read_keypoints_csv(one)


def test_long_lists_are_shortened_in_the_message_but_kept_whole(tmp_path):
    path = tmp_path / "many.csv"
    path.write_text(HEADER + "\n" + "\n".join(f"img{i}.jpg [1]" for i in range(25)) + "\n")
    with pytest.raises(KeypointProblems) as caught:
        read_keypoints_csv(path)
    assert len(caught.value.problems) == 25 and str(caught.value).endswith("; and 15 more")


def test_data_check_reports_every_bad_row(demo_root, tmp_path):
    from augreid.data import load_market

    names = [r.name for r in load_market(demo_root).train[:3]]
    csv = _bad_csv(tmp_path / "broken-annotation-train.csv", good_names=tuple(names))
    json_out = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        ["data", "check", str(demo_root), "--train-keypoints", str(csv), "--no-verify-images", "--json", str(json_out)],
    )
    assert result.exit_code == 1, result.output
    bad = [line for line in result.output.splitlines() if line.startswith("error:") and "broken-annotation" in line]
    shown = {int(line.split(":")[2]) for line in bad}
    assert shown == {n + len(names) - 1 for n in BAD_LINES}  # every bad row, each on its own line
    assert "6 error(s)" in result.output
    # The rows that parse still count: the split table shows the three good training rows.
    train_row = next(line for line in result.output.splitlines() if line.startswith("bounding_box_train"))
    assert train_row.split()[4] == "3"
