"""Turning records into text for people; programs get JSON from the records themselves."""

from __future__ import annotations

import time
from collections.abc import Sequence

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


def table(records: Sequence[JobRecord], now: float | None = None) -> str:
    now = time.time() if now is None else now
    header = ("ID", "POD", "STATE", "EXIT", "RUNTIME", "AGE", "COMMAND / REASON")
    rows = [header]
    for record in records:
        detail = record.line if record.state != "refused" else f"{record.rule}: {record.reason}"
        rows.append(
            (
                str(record.id),
                record.pod or "-",
                str(record.state),
                exit_status(record),
                duration(ran_for(record, now)),
                duration(now - record.submitted_at),
                detail if len(detail) <= 80 else detail[:79] + "…",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    )
