"""Reading the job records: what the CLI and the daemon's start-up see of the store.

Readers open their own read-only connection (WAL lets them read while the writer commits) and never create
or change the file. Every filter has an index whose definition matches the query, so none scans the table.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hostpipe.core.job import LIVE_STATES, JobState
from hostpipe.daemon.schema import DB_NAME, SCHEMA_VERSION, open_for_reading, schema_version


@dataclass(frozen=True)
class JobRecord:
    id: int
    pod: str | None
    client_id: str | None
    line: str
    argv: list[str] | None
    runtime: str | None
    image: str | None
    state: JobState
    rule: str | None
    argument: str | None
    reason: str | None
    exit_code: int | None
    signal: int | None
    pid: int | None
    pid_start: int | None
    timeout: float | None
    submitted_at: float
    started_at: float | None
    ended_at: float | None
    log: str | None
    start_attempt: float | None = None
    """When the daemon committed that it was about to start the job; None: it never tried."""
    container_id: str | None = None
    """The id of the container this job created, as hostpipe itself obtained it (docker and podman)."""
    detached: bool = False
    """The job supervises a container started with `run -d`."""
    log_dropped: int | None = None
    """Bytes of the job's log dropped at the log cap."""
    lines: int | None = None
    """A summary of refused lines over the rate limit: how many lines it stands for (None: the record is one)."""
    last_line: str | None = None
    """A summary's last line; `line` is its first."""
    reply_nonce: str | None = None
    """The nonce of the reply key the job was submitted with (hostpipe.core.replies)."""
    token_hash: str | None = None
    """SHA-256 of that key's token; None when the key came without one."""

    def as_json(self) -> dict[str, Any]:
        """The shape `hostpipe ps --json` prints; pinned by a test, so extend it, never rename a key."""
        return {
            "id": self.id,
            "pod": self.pod,
            "client_id": self.client_id,
            "state": str(self.state),
            "exit_code": self.exit_code,
            "signal": self.signal,
            "reason": self.reason,
            "rule": self.rule,
            "argument": self.argument,
            "argv": self.argv,
            "line": self.line,
            "runtime": self.runtime,
            "image": self.image,
            "pid": self.pid,
            "timeout": self.timeout,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "log": self.log,
            "container_id": self.container_id,
            "detached": self.detached,
            "log_dropped": self.log_dropped,
            "lines": self.lines,
            "last_line": self.last_line,
        }


COLUMNS = (
    "id, pod, client_id, line, argv, runtime, image, state, rule, argument, reason, exit_code, signal, "
    "pid, pid_start, timeout, submitted_at, started_at, ended_at, log, start_attempt, container_id, detached, "
    "log_dropped, lines, last_line, reply_nonce, token_hash"
)
_NEWER = {
    1: "start_attempt, container_id, detached, log_dropped, lines, last_line, reply_nonce, token_hash",
    2: "lines, last_line, reply_nonce, token_hash",
    3: "reply_nonce, token_hash",
}
_COLUMNS_OF = {
    version: COLUMNS.replace(names, ", ".join(["NULL"] * len(names.split(", ")))) for version, names in _NEWER.items()
}
"""What a reader selects from a file of an older version, which a daemon of this version has not migrated yet."""


def record_of(row: tuple[Any, ...]) -> JobRecord:
    values = list(row)
    values[4] = json.loads(values[4]) if values[4] is not None else None
    values[7] = JobState(values[7])
    values[22] = bool(values[22])
    return JobRecord(*values)


def first_id_since(conn: sqlite3.Connection, since: float) -> int:
    """The smallest id whose record was submitted at or after `since` (past the last id when none was).

    Ids grow with submission, so this is a binary search over the primary key: about 20 look-ups at a million
    records, where a filter on the time would scan the table. A clock stepped back can put a few records out of
    order; the search then finds one of the boundaries, which is what a time filter can promise.
    """
    # Two queries: sqlite answers min() and max() from the primary key only when each is alone.
    low = conn.execute("SELECT coalesce(min(id), 1) FROM jobs").fetchone()[0]
    high = conn.execute("SELECT coalesce(max(id), 0) FROM jobs").fetchone()[0] + 1
    while low < high:
        middle = (low + high) // 2
        row = conn.execute("SELECT id, submitted_at FROM jobs WHERE id >= ? ORDER BY id LIMIT 1", (middle,)).fetchone()
        if row is None or row[1] >= since:
            high = middle
        else:
            low = row[0] + 1
    return int(low)


def select(
    conn: sqlite3.Connection,
    *,
    job_id: int | None = None,
    pod: str | None = None,
    states: Iterable[JobState] | None = None,
    client_id: str | None = None,
    limit: int | None = None,
    version: int = SCHEMA_VERSION,
    reply_nonce: str | None = None,
    since: float | None = None,
) -> Iterator[JobRecord]:
    where: list[str] = []
    params: list[Any] = []
    if since is not None:
        # Records are numbered in the order their lines came, so the first id submitted at or after `since`
        # bounds the rest by the primary key (no index on the time needed). Found by binary search over ids.
        where.append("id >= ?")
        params.append(first_id_since(conn, since))
    if job_id is not None:
        where.append("id = ?")
        params.append(job_id)
    if pod is not None:
        where.append("pod = ?")
        params.append(pod)
    if client_id is not None:
        where.append("client_id = ?")
        params.append(client_id)
    if reply_nonce is not None:
        if version < 4:
            return
        where.append("reply_nonce = ?")
        params.append(reply_nonce)
    if states is not None:
        names = [JobState(s).value for s in states]
        where.append(f"state IN ({', '.join('?' * len(names))})")
        params.extend(names)
    # Only fixed column names and placeholders are formatted in; every value is a bound parameter.
    sql = f"SELECT {_COLUMNS_OF.get(version, COLUMNS)} FROM jobs"  # noqa: S608
    if where:
        sql += " WHERE " + " AND ".join(where)
    if limit is not None:
        # The newest `limit` records, shown oldest first.
        sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT ?) ORDER BY id"  # noqa: S608
        params.append(limit)
    else:
        sql += " ORDER BY id"
    for row in conn.execute(sql, params):
        yield record_of(row)


class Reader:
    """A read-only view of the records: it never creates the file and never writes."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / DB_NAME
        self._conn = open_for_reading(state_dir)
        self.version = schema_version(self._conn)

    def close(self) -> None:
        self._conn.close()

    def jobs(
        self,
        *,
        pod: str | None = None,
        states: Iterable[JobState] | None = None,
        client_id: str | None = None,
        limit: int | None = None,
        since: float | None = None,
    ) -> list[JobRecord]:
        return list(self.each(pod=pod, states=states, client_id=client_id, limit=limit, since=since))

    def each(
        self,
        *,
        pod: str | None = None,
        states: Iterable[JobState] | None = None,
        client_id: str | None = None,
        limit: int | None = None,
        since: float | None = None,
    ) -> Iterator[JobRecord]:
        """The records one at a time, oldest first, as sqlite steps through them: memory stays bounded."""
        return select(
            self._conn, pod=pod, states=states, client_id=client_id, limit=limit, since=since, version=self.version
        )

    def counts(self, *, since: float, cap: int) -> dict[str, int]:
        """How many records of each state came since `since`, each counted up to `cap` (so a flood of a million
        costs no more than `cap` index entries per state); states without records are left out."""
        first = first_id_since(self._conn, since)
        out = {}
        for state in JobState:
            (count,) = self._conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE state = ? AND id >= ? LIMIT ?)",
                (state.value, first, cap),
            ).fetchone()
            if count:
                out[state.value] = int(count)
        return out

    def newest(self, state: JobState, count: int) -> list[JobRecord]:
        """The newest `count` records in `state`, newest first."""
        return list(reversed(self.jobs(states=[state], limit=count)))

    def get(self, job_id: int) -> JobRecord | None:
        return next(iter(select(self._conn, job_id=job_id, version=self.version)), None)

    def by_reply(self, nonce: str) -> JobRecord | None:
        """The job submitted with a reply key of this nonce (the first, should a store hold two)."""
        return next(iter(select(self._conn, reply_nonce=nonce, version=self.version)), None)

    def live(self) -> list[JobRecord]:
        return self.jobs(states=LIVE_STATES)

    def meta(self) -> dict[str, Any]:
        try:
            return {key: value for key, value in self._conn.execute("SELECT key, value FROM meta")}
        except sqlite3.OperationalError:
            return {}
