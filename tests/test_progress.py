"""Progress reports: tqdm's bar on a terminal, a few plain lines (no carriage returns) in a log."""

from __future__ import annotations

import io

import pytest
from tqdm import tqdm

from augreid import progress
from augreid.progress import LineProgress, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)


def test_many_updates_in_a_log_give_a_few_plain_lines():
    stream, clock = io.StringIO(), Clock()
    bar = LineProgress(total=10_000, desc="synth", unit="img", file=stream, clock=clock)
    for _ in range(10_000):
        clock.now += 0.05  # 500 s in all: every 10 % takes 50 s, longer than 30 s
        bar.update()
    bar.close()
    text = stream.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and "\x1b" not in text
    assert 9 <= len(lines) <= 11, lines  # about one per 10 %, and the last
    assert all(line.startswith("synth:") for line in lines)
    assert "10000/10000" in lines[-1]


def test_the_rarer_of_ten_percent_and_thirty_seconds_sets_the_spacing():
    # Fast work: 10 % takes 1 s, so lines come every 30 s.
    stream, clock = io.StringIO(), Clock()
    bar = LineProgress(total=1000, file=stream, clock=clock)
    for _ in range(1000):
        clock.now += 0.1  # 100 s in all
        bar.update()
    bar.close()
    assert len(stream.getvalue().splitlines()) == 4  # at 30, 60, 90 s and the end
    # Unknown total: a line every 30 s while the count moves.
    stream, clock = io.StringIO(), Clock()
    bar = LineProgress(file=stream, clock=clock)
    for _ in range(600):
        clock.now += 0.5  # 300 s
        bar.update()
    bar.close()
    assert 9 <= len(stream.getvalue().splitlines()) <= 11


def test_short_work_prints_one_line_or_none():
    stream = io.StringIO()
    for _ in progress_bar(range(5000), desc="verify", file=stream):
        pass
    assert stream.getvalue().count("\n") == 1 and "5000/5000" in stream.getvalue()
    stream = io.StringIO()
    for _ in progress_bar(range(5000), desc="ranking", file=stream, leave=False):  # a transient bar
        pass
    assert stream.getvalue() == ""


def test_terminal_gets_tqdms_bar_and_the_environment_overrides(monkeypatch):
    terminal = Terminal()
    bar = progress_bar(total=3, file=terminal)
    assert type(bar) is tqdm
    bar.close()
    assert isinstance(progress_bar(total=3, file=io.StringIO()), LineProgress)
    monkeypatch.setenv(progress.ENV, "lines")
    assert isinstance(progress_bar(total=3, file=terminal), LineProgress)
    monkeypatch.setenv(progress.ENV, "none")
    stream = io.StringIO()
    for _ in progress_bar(range(10), file=stream):
        pass
    assert stream.getvalue() == ""


def test_disabled_bar_writes_nothing_and_write_keeps_the_log_clean():
    stream = io.StringIO()
    for _ in progress_bar(range(100), file=stream, disable=True):
        pass
    assert stream.getvalue() == ""
    bar = progress_bar(total=10, file=stream, desc="train-gen")
    tqdm.write("resumed at step 4", file=stream)  # what generator training prints beside its bar
    bar.update(10)
    bar.close()
    assert "\r" not in stream.getvalue() and stream.getvalue().splitlines()[0] == "resumed at step 4"
