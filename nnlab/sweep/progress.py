"""What a running sweep says: progress as plain lines, for output that is not a terminal (a log file,
a pipe, a notebook; a rich progress bar redraws itself in place, which a log cannot show), the note
that kernels are being compiled, and the last line's counts.

A leaf: it imports nothing of nnlab's.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

STEP = 0.05  # a line each time another 5% of the items is done,
INTERVAL = 2.0  # but not before this many seconds have passed since the start or the last line


class PlainProgress:
    """A callback ``(done, total)`` that prints ``name: done/total what (p%), t elapsed, about t left``
    every `STEP` of the work, at most every `INTERVAL` seconds (so a sweep of a few seconds prints
    nothing), and a last line at 100% when it printed any before.

    The first call gives the items already done (reused from an earlier session): the rate and the
    time left count only the items done after it, and from the first item done on (so that the
    kernels' compile, paid by the first items, is not taken for the pace of the rest).
    """

    def __init__(
        self,
        name: str,
        what: str = "runs",
        *,
        stream: TextIO | None = None,
        step: float | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.what, self.stream = name, what, stream
        self.step = STEP if step is None else step
        self.interval = INTERVAL if interval is None else interval
        self.clock = clock
        self.start = clock()
        self.last_time = self.start
        self.first: int | None = None
        self.mark: tuple[float, int] | None = None  # (time, items) when the first item was done
        self.last_share = -1.0
        self.printed = 0

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if self.first is None:
            self.first = done
            self.last_share = done / total if total else 1.0
            return
        if self.mark is None and done > self.first:
            self.mark = (now, done)
        share = done / total if total else 1.0
        finished = done >= total
        due = share - self.last_share >= self.step and now - self.last_time >= self.interval
        if not (due or (finished and self.printed)):
            return
        elapsed = now - self.start
        line = f"{self.name}: {done:,}/{total:,} {self.what} ({share:.0%}), {clock(elapsed)}"
        since, base = self.mark or (now, done)
        if not finished and done > base:
            line += f", about {clock((now - since) / (done - base) * (total - done))} left"
        print(line, file=self.stream or sys.stdout, flush=True)
        self.last_time, self.last_share = now, share
        self.printed += 1


def clock(seconds: float) -> str:
    """12 s, 3 min 05 s, 2 h 07 min."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def compile_note(layouts: list[str], jobs: int = 1) -> str:
    """The line that explains a first run's silence: which kernels compile, and for how long."""
    where = " (in each worker)" if jobs > 1 else ""
    return (
        f"nnlab: compiling the {' and '.join(layouts)} kernels{where}: about 20-40 s each, once "
        "(later runs load them from numba's cache)"
    )


def run_line(manifest: dict, folder) -> str:
    """The last line of a sweep: runs stored of the total, where, and what this session did."""
    session = manifest["sessions"][-1]
    line = (
        f"{manifest['runs_done']}/{manifest['runs_total']} runs in {folder}/ (runs.parquet, curves.parquet); "
        f"this session: {session['runs_trained']} trained, {session['runs_reused']} reused, "
        f"{session['runs_failed']} failed"
    )
    missing = manifest["runs_total"] - manifest["runs_done"]
    stopped = manifest.get("stopped")
    if stopped and missing:  # why runs are missing, on the line a log keeps
        line += f"; {missing} runs not stored: {stopped.split(' (', 1)[0]} (a rerun trains them)"
    return line
