"""The job records: one sqlite file, written by the daemon, read by every other command.

The daemon holds the only writing connection. Each batch of lines read from the pipe is inserted in one
transaction and committed before any of its jobs is started, so a job that runs always has a record. Other
commands open the file read-only. `PRAGMA user_version` carries the schema version; `migrate` brings an older
file forward, and a newer one is refused rather than misread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from hostpipe.core.job import LIVE_STATES, JobState, Outcome

SCHEMA_VERSION = 1
DB_NAME = "hostpipe.sqlite3"

# Partial indexes: a flood of anonymous refused lines touches none of them, and the live-state index stays as
# small as the number of jobs queued or running.
_SCHEMA_V1 = """
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    pod          TEXT,
    client_id    TEXT,
    line         TEXT NOT NULL,
    argv         TEXT,
    runtime      TEXT,
    image        TEXT,
    state        TEXT NOT NULL,
    rule         TEXT,
    argument     TEXT,
    reason       TEXT,
    exit_code    INTEGER,
    signal       INTEGER,
    pid          INTEGER,
    pid_start    INTEGER,
    timeout      REAL,
    submitted_at REAL NOT NULL,
    started_at   REAL,
    ended_at     REAL,
    log          TEXT
);
CREATE INDEX jobs_by_pod ON jobs (pod, id) WHERE pod IS NOT NULL;
CREATE INDEX jobs_live ON jobs (state, id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_by_client_id ON jobs (client_id, id) WHERE client_id IS NOT NULL;
"""


class StoreError(Exception):
    pass


class NewJob(NamedTuple):
    """A record as it is first written: queued, or refused with its rule and reason.

    A named tuple rather than a dataclass: one is made for every line read, and this is the cheap kind.
    """

    line: str
    state: JobState
    submitted_at: float
    pod: str | None = None
    client_id: str | None = None
    argv: Sequence[str] | None = None
    runtime: str | None = None
    image: str | None = None
    rule: str | None = None
    argument: str | None = None
    reason: str | None = None
    timeout: float | None = None


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
        }


_COLUMNS = (
    "id, pod, client_id, line, argv, runtime, image, state, rule, argument, reason, exit_code, signal, "
    "pid, pid_start, timeout, submitted_at, started_at, ended_at, log"
)


def _record(row: tuple[Any, ...]) -> JobRecord:
    values = list(row)
    values[4] = json.loads(values[4]) if values[4] is not None else None
    values[7] = JobState(values[7])
    return JobRecord(*values)


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}; this hostpipe reads up to {SCHEMA_VERSION}. Upgrade hostpipe."
        )
    if version == 0:
        with conn:
            conn.executescript(_SCHEMA_V1)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class Store:
    """The daemon's writing connection."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / DB_NAME
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a commit survives a crash of the daemon; only a power loss can take the last ones.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA busy_timeout = 5000")
        _migrate(self._conn, self.path)

    def close(self) -> None:
        self._conn.close()

    def insert(self, jobs: Sequence[NewJob]) -> list[int]:
        """Insert a batch in one transaction and return the new ids in order.

        Only this connection writes, so the batch's ids are the consecutive ones ending at the last rowid.
        """
        if not jobs:
            return []
        rows = [
            (
                job.pod,
                job.client_id,
                job.line,
                json.dumps(list(job.argv)) if job.argv is not None else None,
                job.runtime,
                job.image,
                str(job.state),
                job.rule,
                job.argument,
                job.reason,
                job.timeout,
                job.submitted_at,
            )
            for job in jobs
        ]
        conn = self._conn
        conn.execute("BEGIN")
        try:
            conn.executemany(
                "INSERT INTO jobs (pod, client_id, line, argv, runtime, image, state, rule, argument, reason,"
                " timeout, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return list(range(last - len(rows) + 1, last + 1))

    def started(self, job_id: int, *, pid: int, pid_start: int | None, started_at: float, log: str) -> None:
        self._conn.execute(
            "UPDATE jobs SET state = ?, pid = ?, pid_start = ?, started_at = ?, log = ? WHERE id = ?",
            (str(JobState.RUNNING), pid, pid_start, started_at, log, job_id),
        )

    def finished(self, job_id: int, outcome: Outcome, *, ended_at: float, log: str | None = None) -> None:
        self._conn.execute(
            "UPDATE jobs SET state = ?, exit_code = ?, signal = ?, reason = COALESCE(?, reason), ended_at = ?,"
            " log = COALESCE(?, log) WHERE id = ?",
            (str(outcome.state), outcome.exit_code, outcome.signal, outcome.reason, ended_at, log, job_id),
        )

    def live(self) -> list[JobRecord]:
        return list(_select(self._conn, states=LIVE_STATES))

    def get(self, job_id: int) -> JobRecord | None:
        return next(iter(_select(self._conn, job_id=job_id)), None)


def _select(
    conn: sqlite3.Connection,
    *,
    job_id: int | None = None,
    pod: str | None = None,
    states: Iterable[JobState] | None = None,
    client_id: str | None = None,
    limit: int | None = None,
) -> Iterator[JobRecord]:
    where: list[str] = []
    params: list[Any] = []
    if job_id is not None:
        where.append("id = ?")
        params.append(job_id)
    if pod is not None:
        where.append("pod = ?")
        params.append(pod)
    if client_id is not None:
        where.append("client_id = ?")
        params.append(client_id)
    if states is not None:
        # Written as literals (they are JobState values, never input) so that sqlite can use the partial index
        # of live jobs when only live states are asked for.
        names = ", ".join(f"'{JobState(s).value}'" for s in states)
        where.append(f"state IN ({names})")
    # Only fixed column names and placeholders are formatted in; every value is a bound parameter.
    sql = f"SELECT {_COLUMNS} FROM jobs"  # noqa: S608
    if where:
        sql += " WHERE " + " AND ".join(where)
    if limit is not None:
        # The newest `limit` records, shown oldest first.
        sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT ?) ORDER BY id"  # noqa: S608
        params.append(limit)
    else:
        sql += " ORDER BY id"
    for row in conn.execute(sql, params):
        yield _record(row)


class Reader:
    """A read-only view for the CLI: it never creates the file and never writes."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / DB_NAME
        if not self.path.exists():
            raise StoreError(f"no job records at {self.path} (has `hostpipe serve` run with this --state-dir?)")
        self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        self._conn.execute("PRAGMA busy_timeout = 5000")
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {version}; this hostpipe reads up to {SCHEMA_VERSION}")

    def close(self) -> None:
        self._conn.close()

    def jobs(
        self,
        *,
        pod: str | None = None,
        states: Iterable[JobState] | None = None,
        client_id: str | None = None,
        limit: int | None = None,
    ) -> list[JobRecord]:
        return list(_select(self._conn, pod=pod, states=states, client_id=client_id, limit=limit))

    def get(self, job_id: int) -> JobRecord | None:
        return next(iter(_select(self._conn, job_id=job_id)), None)
