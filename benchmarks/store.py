"""Read-only counts from hostpipe's sqlite file, for polling while the daemon writes.

`hostpipe ps --json` is the supported way to read records, and the harness uses it to check them; but starting
the CLI every few milliseconds to watch 100,000 rows arrive would cost more than what is being measured. A
read-only connection to the WAL database sees each committed row at the cost of one query.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

TERMINAL = ("succeeded", "failed", "timed_out", "cancelled", "refused", "interrupted")


def _job_table(db: sqlite3.Connection) -> str:
    # The table of records is the one with a `state` column; its name is the store's business.
    tables = [str(row[0]) for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        columns = {row[1] for row in db.execute(f'PRAGMA table_info("{table}")')}
        if "state" in columns:
            return table
    raise LookupError(f"no table with a state column among {tables}")


def state_counts(state_dir: Path) -> dict[str, int]:
    """Records per state in `state_dir`'s database ({} while it does not exist yet)."""
    path = state_dir / "hostpipe.sqlite3"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        table = _job_table(db)
        return dict(db.execute(f'SELECT state, COUNT(*) FROM "{table}" GROUP BY state').fetchall())
    except (sqlite3.OperationalError, LookupError):
        return {}  # the schema is being created right now
    finally:
        db.close()


def wait_for_counts(
    state_dir: Path, done: Callable[[dict[str, int]], bool], timeout: float, poll: float = 0.02
) -> tuple[dict[str, int], int]:
    """Poll until `done(counts)` or `timeout`; return the last counts and when they were read (wall ns)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = state_counts(state_dir)
        read_at = time.time_ns()
        if done(counts) or time.monotonic() >= deadline:
            return counts, read_at
        time.sleep(poll)


def wait_for_rows(state_dir: Path, rows: int, timeout: float, poll: float = 0.02) -> int:
    """Poll until the table holds `rows` records (its largest rowid; ids count from 1 in a new state folder).

    Cheap at any size (one index lookup on one open connection), unlike counting by state, so that polling does
    not take CPU from the daemon it measures. Returns when the last row was seen (wall ns), or at the timeout.
    """
    path = state_dir / "hostpipe.sqlite3"
    deadline = time.monotonic() + timeout
    db: sqlite3.Connection | None = None
    try:
        while True:
            if db is None and path.exists():
                db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            seen = 0
            if db is not None:
                try:
                    seen = db.execute(f'SELECT MAX(rowid) FROM "{_job_table(db)}"').fetchone()[0] or 0
                except (sqlite3.OperationalError, LookupError):
                    seen = 0
            if seen >= rows or time.monotonic() >= deadline:
                return time.time_ns()
            time.sleep(poll)
    finally:
        if db is not None:
            db.close()


def terminal(counts: dict[str, int]) -> int:
    return sum(n for state, n in counts.items() if state in TERMINAL)
