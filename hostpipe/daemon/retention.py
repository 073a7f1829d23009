"""Retention: records and job logs older than the policy's `retention` are removed.

Every line is a record and every job that ran has a log, so without an end both grow for as long as pods
write. A record is old once its job has ended `retention` ago (a refused line: once it arrived that long ago);
records of queued and running jobs are never removed, whatever their age, and neither are summaries of refused
lines that are still counting (`refusals`).

A sweep finds old records in id order, a batch at a time, through its own read-only connection on a thread,
removes their log files there, then has the writer remove the records (`purge`, which checks the age and the
state again) and waits for that commit before the next batch: a log is gone before its record, so a crash in
between leaves a record whose log is missing, which the next sweep removes, never a log no record names. Log
files no record names at all (left by a store that was replaced) are removed once they are as old. The daemon
sweeps every tenth of the retention (at least every second, at most every ten minutes) and logs what it
removed once per sweep (`retention_swept`).

`hostpipe clean` sweeps on demand: through the daemon when one runs, or here, directly, with the state
folder's lock held so that no daemon starts meanwhile (`clean_directly`). Only then are empty pod folders
under `logs/` removed too: a running daemon may be about to start a job in one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog

from hostpipe.core.policy import Policy
from hostpipe.daemon.events import Listener
from hostpipe.daemon.executor import log_path_for
from hostpipe.daemon.locks import lock_state_dir
from hostpipe.daemon.schema import DB_NAME, StoreError, open_for_reading, open_for_writing
from hostpipe.daemon.store import Store
from hostpipe.daemon.writer import SQL

log = structlog.get_logger("hostpipe.retention")

BATCH = 500
"""Records removed in one transaction: small enough not to hold up the lines the writer commits meanwhile."""
_SCAN = 2000
_LOG_NAME = re.compile(r"([0-9]+)\.log")
_LIVE = ("queued", "running")


def sweep_period(retention: float) -> float:
    """Seconds between two sweeps of the daemon."""
    return min(600.0, max(1.0, retention / 10))


@dataclass
class Swept:
    records: int = 0
    logs: int = 0
    """Log files removed, those of removed records and those no record names."""
    bytes: int = 0
    """Disk space the removed log files took."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Old:
    id: int
    pod: str | None
    log: str | None


def find_old(conn: sqlite3.Connection, cutoff: float, after: int, keep: set[str]) -> tuple[list[Old], int | None]:
    """Records older than `cutoff` with ids above `after`, at most BATCH; and the id to go on after (None: done).

    Records are numbered in the order lines arrive, so the scan stops at the first one that arrived after the
    cut-off: none after it can be old.
    """
    found: list[Old] = []
    rows = conn.execute(
        "SELECT id, pod, state, submitted_at, ended_at, log, summary FROM jobs WHERE id > ? ORDER BY id LIMIT ?",
        (after, _SCAN),
    ).fetchall()
    last = after
    for job_id, pod, state, submitted_at, ended_at, log_file, summary in rows:
        if submitted_at >= cutoff:
            return found, None
        last = job_id
        if state in _LIVE or (ended_at if ended_at is not None else submitted_at) >= cutoff or summary in keep:
            continue
        found.append(Old(job_id, pod, log_file))
        if len(found) >= BATCH:
            return found, last
    return found, (last if len(rows) == _SCAN else None)


def _ours(logs_dir: Path, old: Old) -> Path | None:
    """The log file of a record, in this state folder's `logs/`, when the record names the file hostpipe made."""
    if old.log is None:
        return None
    expected = log_path_for(logs_dir, old.id, old.pod)
    relative = expected.relative_to(logs_dir)
    if ".." in relative.parts or Path(old.log).parts[-4:] != ("logs", *relative.parts):
        return None
    return expected


def _remove(path: Path, swept: Swept) -> None:
    """Remove a file and count it, with the disk space it took; a file already gone counts for nothing."""
    try:
        info = os.lstat(path)
        os.unlink(path)
    except FileNotFoundError:
        return
    swept.logs += 1
    swept.bytes += info.st_blocks * 512


def remove_logs(logs_dir: Path, olds: list[Old], swept: Swept) -> None:
    for old in olds:
        path = _ours(logs_dir, old)
        if path is not None:
            _remove(path, swept)


def remove_orphans(
    conn: sqlite3.Connection, logs_dir: Path, cutoff: float, swept: Swept, *, empty_dirs: bool = False
) -> None:
    """Log files older than `cutoff` that no record names; with `empty_dirs`, pod folders left empty."""
    for folder in _pod_folders(logs_dir):
        candidates: dict[int, Path] = {}
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                match = _LOG_NAME.fullmatch(entry.name)
                if (
                    match
                    and entry.is_file(follow_symlinks=False)
                    and entry.stat(follow_symlinks=False).st_mtime < cutoff
                ):
                    candidates[int(match.group(1))] = Path(entry.path)
        ids = list(candidates)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            named = {row[0] for row in conn.execute(f"SELECT id FROM jobs WHERE id IN ({marks})", chunk)}  # noqa: S608
            for job_id in chunk:
                if job_id not in named:
                    _remove(candidates[job_id], swept)
        if empty_dirs:
            with contextlib.suppress(OSError):
                folder.rmdir()
                folder.parent.rmdir()


def _pod_folders(logs_dir: Path) -> list[Path]:
    folders = []
    with contextlib.suppress(OSError):
        for namespace in os.scandir(logs_dir):
            if namespace.is_dir(follow_symlinks=False):
                with contextlib.suppress(OSError), os.scandir(namespace.path) as names:
                    folders += [Path(n.path) for n in names if n.is_dir(follow_symlinks=False)]
    return folders


class Retention(Listener):
    """The daemon's sweeps: on its tick, and on demand (`hostpipe clean` through the control socket)."""

    def __init__(
        self,
        *,
        state_dir: Path,
        store: Store,
        policy: Callable[[], Policy],
        keep: Callable[[], set[str]],
    ) -> None:
        self._state_dir = state_dir
        self._store = store
        self._policy = policy
        self._keep = keep
        self._lock = asyncio.Lock()
        self._next = 0.0
        self._task: asyncio.Task[Swept] | None = None

    def tick(self, now: float) -> None:
        retention = self._policy().retention
        if not retention or now < self._next or (self._task is not None and not self._task.done()):
            return
        self._next = now + sweep_period(retention)
        self._task = asyncio.ensure_future(self.sweep(retention, on_demand=False))

    async def sweep(self, older_than: float, *, on_demand: bool = True) -> Swept:
        """Remove what is older than `older_than` seconds; one sweep at a time."""
        async with self._lock:
            started = time.monotonic()
            cutoff = time.time() - older_than
            swept = Swept()
            logs_dir = self._state_dir / "logs"
            after: int | None = 0
            while after is not None:
                olds, after = await asyncio.to_thread(self._find, cutoff, after, self._keep())
                if not olds:
                    continue
                await asyncio.to_thread(remove_logs, logs_dir, olds, swept)
                for old in olds[:-1]:
                    self._store.write("purge", (old.id, cutoff))
                committed = self._store.write("purge", (olds[-1].id, cutoff), wait=True)
                assert committed is not None
                await committed
                swept.records += len(olds)
            await asyncio.to_thread(self._orphans, logs_dir, cutoff, swept)
            if on_demand or swept.records or swept.logs:
                log.info(
                    "retention_swept",
                    **swept.as_dict(),
                    older_than=older_than,
                    on_demand=on_demand,
                    seconds=round(time.monotonic() - started, 3),
                )
            return swept

    def _find(self, cutoff: float, after: int, keep: set[str]) -> tuple[list[Old], int | None]:
        conn = open_for_reading(self._state_dir)
        try:
            return find_old(conn, cutoff, after, keep)
        finally:
            conn.close()

    def _orphans(self, logs_dir: Path, cutoff: float, swept: Swept) -> None:
        conn = open_for_reading(self._state_dir)
        try:
            remove_orphans(conn, logs_dir, cutoff, swept)
        finally:
            conn.close()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


def clean_directly(state_dir: Path, older_than: float) -> Swept:
    """Sweep without a daemon, holding the state folder's lock (raises AlreadyServing while a daemon runs)."""
    if not (state_dir / DB_NAME).exists():
        raise StoreError(f"no job records at {state_dir / DB_NAME} (has `hostpipe serve` run with this --state-dir?)")
    lock = lock_state_dir(state_dir)
    try:
        conn, _ = open_for_writing(state_dir / DB_NAME)
        try:
            return _clean(conn, state_dir / "logs", time.time() - older_than)
        finally:
            conn.close()
    finally:
        os.close(lock)


def _clean(conn: sqlite3.Connection, logs_dir: Path, cutoff: float) -> Swept:
    swept = Swept()
    after: int | None = 0
    while after is not None:
        olds, after = find_old(conn, cutoff, after, set())
        if not olds:
            continue
        remove_logs(logs_dir, olds, swept)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(SQL["purge"], [(old.id, cutoff) for old in olds])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        swept.records += len(olds)
    remove_orphans(conn, logs_dir, cutoff, swept, empty_dirs=True)
    return swept
