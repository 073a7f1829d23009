"""Turning records into text for people; programs get JSON from the records themselves.

Every piece of pod-controlled text (line, pod, reason, argument) passes through `escape` on its way here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

from hostpipe.cli.escape import escape
from hostpipe.daemon.records import JobRecord


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
    return f"{seconds // 86400:.0f}d{seconds % 86400 // 3600:02.0f}h"


def exit_status(record: JobRecord) -> str:
    if record.signal is not None:
        return f"sig{record.signal}"
    return "-" if record.exit_code is None else str(record.exit_code)


def ran_for(record: JobRecord, now: float) -> float | None:
    if record.started_at is None:
        return None
    return (record.ended_at or now) - record.started_at


def wall_clock(timestamp: float | None) -> str:
    """A local ISO 8601 time with its offset, to the second: what `show` prints."""
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def short_time(timestamp: float, now: float) -> str:
    """A local time for a table: the time of day today, the date and minute before."""
    moment = datetime.fromtimestamp(timestamp)
    if moment.date() == datetime.fromtimestamp(now).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def state_label(record: JobRecord, serving: bool) -> str:
    """The state, with a question mark where the record says live but no daemon serves the folder any more."""
    if record.state.terminal or serving:
        return str(record.state)
    return f"{record.state}? (no daemon)"


def detail(record: JobRecord) -> str:
    """The last column: the line, or for a refusal its rule and reason (and how many lines a summary holds)."""
    if record.state != "refused":
        return escape(record.line)
    text = f"{record.rule}: {record.reason}"
    if record.lines is not None:
        text = f"[{record.lines} lines] {text}"
    return escape(text)


HEADER = ("ID", "POD", "STATE", "EXIT", "ELAPSED", "SUBMITTED", "COMMAND / REASON")
_POD_WIDTH = 40
"""A pod name longer than this is cut in a table cut to the terminal's width."""


def _cut(text: str, width: int) -> str:
    if width < 1:
        return ""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def rows(records: Iterable[JobRecord], *, serving: bool, now: float | None = None) -> list[tuple[str, ...]]:
    now = time.time() if now is None else now
    return [
        (
            str(record.id),
            escape(record.pod or "-"),
            state_label(record, serving),
            exit_status(record),
            duration(ran_for(record, now)),
            short_time(record.submitted_at, now),
            detail(record),
        )
        for record in records
    ]


def table(
    records: Iterable[JobRecord], *, serving: bool = True, width: int | None = None, now: float | None = None
) -> str:
    """The records as aligned columns. With a `width`, cells are cut to fit it (long pods first, then the last
    column); without one, nothing is cut."""
    body = rows(records, serving=serving, now=now)
    if width is not None:
        body = [(r[0], _cut(r[1], _POD_WIDTH), *r[2:]) for r in body]
    lines = [HEADER, *body]
    widths = [max(len(row[i]) for row in lines) for i in range(len(HEADER) - 1)]
    prefix_width = sum(widths) + 2 * len(widths)
    out = []
    for row in lines:
        last = row[-1] if width is None else _cut(row[-1], max(width - prefix_width, 20))
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + last)
    return "\n".join(line.rstrip() for line in out)
