"""Progress reports that a person can read: a bar on a terminal, a plain line now and then in a log.

Every long loop in augreid shows its progress through :func:`progress_bar`, which
takes tqdm's arguments and returns a tqdm object (``update``, ``close``,
``set_postfix``, iteration, ``with``):

* when the stream (stderr unless ``file=`` says otherwise) is a terminal, it is
  tqdm's own bar, redrawn in place;
* otherwise (CI, ``nohup``, ``2> log``) it is a :class:`LineProgress`: no carriage
  returns and no redraws, one plain line (``synth:  40%|...| 96/240 [01:02<01:33, 1.5img/s]``)
  when at least ``LINE_EVERY_FRACTION`` of the total *and* ``LINE_EVERY_SECONDS``
  have passed since the last line (whichever is rarer; without a total, every
  ``LINE_EVERY_SECONDS``), and a last line when the bar closes, if it is kept
  (tqdm's ``leave``) or printed a line before.

``AUGREID_PROGRESS`` overrides the choice: ``bars``, ``lines`` or ``none``.
This module sits below every layer (it imports only tqdm), so generators use it too.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import IO, Any

from tqdm import tqdm

ENV = "AUGREID_PROGRESS"
MODES = ("bars", "lines", "none")
LINE_EVERY_FRACTION = 0.1  # of the total, between two lines of a LineProgress
LINE_EVERY_SECONDS = 30.0  # at least this long between two lines


class LineProgress(tqdm):
    """tqdm for a log: whole lines, printed when due (see the module's docstring), never ``\\r``.

    ``every_fraction`` / ``every_seconds`` set the spacing of lines; ``clock`` is the
    time source of that spacing (``time.monotonic``; tests pass their own).
    """

    def __init__(
        self,
        *args: Any,
        every_fraction: float = LINE_EVERY_FRACTION,
        every_seconds: float = LINE_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        self._every_fraction, self._every_seconds, self._clock = every_fraction, every_seconds, clock
        self._line_t: float = clock()
        self._line_n: float | None = None  # the count at the last line; None until one is printed
        self._keep = kwargs.get("leave", True) is not False
        kwargs["leave"] = False  # tqdm's close would clear the bar with "\r"; close() below writes the last line
        kwargs["mininterval"] = 0  # every update asks display() below, which decides; the check is cheap
        kwargs["dynamic_ncols"] = False
        kwargs.setdefault("ncols", 100)
        kwargs.setdefault("ascii", True)  # "#" in a log, not block characters
        super().__init__(*args, **kwargs)

    def _started(self) -> float:
        return self._line_n if self._line_n is not None else float(self.initial or 0)

    def _due(self) -> bool:
        if self._clock() - self._line_t < self._every_seconds:
            return False
        moved = self.n - self._started()
        if self.total:
            return moved >= self._every_fraction * self.total
        return moved > 0

    def _write_line(self) -> None:
        self.fp.write(self.format_meter(**self.format_dict) + "\n")
        getattr(self.fp, "flush", lambda: None)()
        self._line_t, self._line_n = self._clock(), self.n

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        """A whole line when one is due; tqdm's redraws and clears (``msg=''``) write nothing."""
        if msg is None and self._due():
            self._write_line()
            return True
        return False

    def clear(self, nolock: bool = False) -> None:
        """Nothing to clear: lines already written stay."""

    def moveto(self, n: int) -> None:
        """No cursor movement in a log."""

    def close(self) -> None:
        """The last line (if the bar is kept or printed before, and moved since), then tqdm's bookkeeping."""
        if not getattr(self, "disable", True) and hasattr(self, "_line_n"):
            printed = self._line_n is not None
            if (self._keep or printed) and self.n != self._line_n:
                self._write_line()
        super().close()


def mode(stream: IO[str] | None = None) -> str:
    """``bars``, ``lines`` or ``none``: ``AUGREID_PROGRESS`` if set, else bars on a terminal and lines elsewhere."""
    chosen = os.environ.get(ENV, "").strip().lower()
    if chosen in MODES:
        return chosen
    stream = sys.stderr if stream is None else stream
    try:
        return "bars" if stream.isatty() else "lines"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return "lines"


def progress_bar(iterable: Iterable[Any] | None = None, **kwargs: Any) -> tqdm:
    """A progress bar with tqdm's arguments: tqdm on a terminal, :class:`LineProgress` in a log.

    ``disable=True`` (or ``AUGREID_PROGRESS=none``) shows nothing; ``file`` defaults to stderr.
    """
    stream = kwargs.get("file")
    chosen = mode(stream)
    if chosen == "none":
        kwargs["disable"] = True
    if chosen == "lines":
        return LineProgress(iterable, **kwargs)
    return tqdm(iterable, **kwargs)
