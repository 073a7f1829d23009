"""Reading the stand-in's stamp file: which jobs started and ended, when, and in which process.

Counting stamps is how the harness sees what a reader really executed, independently of what the reader itself
records: a line that was written but never started is lost, one that started twice is duplicated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stamps:
    """Start and end times (wall clock, ns) and process ids per job id."""

    starts: dict[str, list[int]] = field(default_factory=dict)
    ends: dict[str, list[int]] = field(default_factory=dict)
    pids: dict[str, list[int]] = field(default_factory=dict)

    @property
    def started(self) -> int:
        return sum(len(times) for times in self.starts.values())

    @property
    def ended(self) -> int:
        return sum(len(times) for times in self.ends.values())

    def duplicated(self) -> int:
        """Starts beyond the first for any job id."""
        return sum(len(times) - 1 for times in self.starts.values() if len(times) > 1)

    def lost(self, written: Iterable[str]) -> int:
        """Job ids among `written` that never started."""
        return sum(1 for job_id in written if job_id not in self.starts)

    def last_end(self) -> int | None:
        return max((max(times) for times in self.ends.values()), default=None)

    def peak_running(self) -> int:
        """The most jobs that were between their start and end stamps at the same moment."""
        events = [(t, 1) for times in self.starts.values() for t in times]
        events += [(t, -1) for times in self.ends.values() for t in times]
        running = peak = 0
        for _, step in sorted(events):  # at equal times an end (-1) sorts first: not counted as overlap
            running += step
            peak = max(peak, running)
        return peak


def _epoch_ns(text: str) -> int:
    # $EPOCHREALTIME is seconds with six decimals; the separator follows the locale.
    seconds, _, micros = text.replace(",", ".").partition(".")
    return int(seconds) * 1_000_000_000 + int(micros.ljust(6, "0")[:6]) * 1000


def read_stamps(path: Path) -> Stamps:
    """Parse the stamp file at `path` (an absent file means no stamps)."""
    stamps = Stamps()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return stamps
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue  # a line being appended right now; the next read sees it whole
        kind, job_id, when, pid = parts
        target = stamps.starts if kind == "start" else stamps.ends
        target.setdefault(job_id, []).append(_epoch_ns(when))
        if kind == "start":
            stamps.pids.setdefault(job_id, []).append(int(pid))
    return stamps


def wait_for(path: Path, done: Callable[[Stamps], bool], timeout: float, poll: float = 0.02) -> Stamps:
    """Re-read the stamps until `done(stamps)` or `timeout` seconds pass; return the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        stamps = read_stamps(path)
        if done(stamps) or time.monotonic() >= deadline:
            return stamps
        time.sleep(poll)


def wait_until_settled(path: Path, expected: set[str], timeout: float, quiet: float) -> Stamps:
    """Wait until every expected job has ended, or nothing has moved for `quiet` seconds with no job running.

    The second way out exists for readers that lose lines: their missing jobs never come, and waiting for
    them until the timeout would only make the run longer, not the figures truer.
    """
    deadline = time.monotonic() + timeout
    last_change = time.monotonic()
    previous = (-1, -1)
    while True:
        stamps = read_stamps(path)
        now = time.monotonic()
        if expected <= stamps.ends.keys() or now >= deadline:
            return stamps
        counts = (stamps.started, stamps.ended)
        if counts != previous:
            previous, last_change = counts, now
        elif stamps.started == stamps.ended and now - last_change >= quiet:
            return stamps
        time.sleep(0.02)
