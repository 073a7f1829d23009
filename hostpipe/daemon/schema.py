"""The records' file: its schema, its versions, and opening it for writing or for reading.

`PRAGMA user_version` carries the schema version. `migrate` brings an older file forward one version at a
time, each step in its own transaction, and a file from a newer hostpipe is refused rather than misread. A
checked-in file of every older version is opened by the tests, so old stores keep loading.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 4
DB_NAME = "hostpipe.sqlite3"

_V1 = """
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

# Version 2: the daemon numbers records itself and commits the pipe's inbox position with each batch (meta),
# records when it tried to start a job (so a restart can tell "never started" from "may have started"), the
# container id it obtained, whether the job supervises a detached container, and how much of a job's log was
# dropped at the cap. Every state gets an index, so no filtered query scans the table.
_V2 = """
ALTER TABLE jobs ADD COLUMN start_attempt REAL;
ALTER TABLE jobs ADD COLUMN container_id TEXT;
ALTER TABLE jobs ADD COLUMN detached INTEGER;
ALTER TABLE jobs ADD COLUMN log_dropped INTEGER;
DROP INDEX jobs_live;
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
"""

# Version 3: a record may stand for many refused lines, those of a pod over the rate limit in one interval
# (hostpipe.core.ratelimit): `lines` counts them (NULL: the record is one line), `line` keeps the first and
# `last_line` the last, and `summary` names the record so that its count is brought up to date with each batch.
_V3 = """
ALTER TABLE jobs ADD COLUMN lines INTEGER;
ALTER TABLE jobs ADD COLUMN last_line TEXT;
ALTER TABLE jobs ADD COLUMN summary TEXT;
CREATE UNIQUE INDEX jobs_by_summary ON jobs (summary) WHERE summary IS NOT NULL;
"""

# Version 4: a job submitted with a reply key keeps the key's nonce (which names its reply in the pipe's folder)
# and the SHA-256 of its token (which its client must show to cancel, attach or remove the reply), never the
# token itself. The nonce is looked up when a key comes again, so it has an index.
_V4 = """
ALTER TABLE jobs ADD COLUMN reply_nonce TEXT;
ALTER TABLE jobs ADD COLUMN token_hash TEXT;
CREATE INDEX jobs_by_reply ON jobs (reply_nonce) WHERE reply_nonce IS NOT NULL;
"""

_STEPS = {1: _V1, 2: _V2, 3: _V3, 4: _V4}


class StoreError(Exception):
    """The records cannot be used. The message is one line for the operator."""


class StoreCorrupt(StoreError):
    """The file is not a hostpipe store this version can use (corrupt, or from a newer hostpipe)."""


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: Path) -> bool:
    """Bring the file to SCHEMA_VERSION. Returns True when the file was new (no schema at all)."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise StoreCorrupt(
            f"{path} has schema version {version}; this hostpipe reads up to {SCHEMA_VERSION}. Upgrade hostpipe."
        )
    fresh = version == 0
    for step in range(version + 1, SCHEMA_VERSION + 1):
        # executescript commits whatever is open before it runs, so the transaction is part of the script:
        # a step and its version number land together or not at all.
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{_STEPS[step]}\nPRAGMA user_version = {step};\nCOMMIT;")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return fresh


def open_for_writing(path: Path) -> tuple[sqlite3.Connection, bool]:
    """The one writing connection: WAL, synchronous NORMAL, schema brought forward. Returns (conn, fresh)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a commit survives a crash of the daemon; only a power loss can take the last ones.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA busy_timeout = 1000")
        # A small, bounded WAL: checkpointed every 256 pages and cut back to 1 MiB after, so a nearly full disk
        # (or a small state folder) can still take it once some space is free again. The store's writer
        # checkpoints on its own schedule instead, off the path of a batch's acknowledgement (`writer`).
        conn.execute("PRAGMA wal_autocheckpoint = 256")
        conn.execute("PRAGMA journal_size_limit = 1048576")
        fresh = migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn, fresh


def open_for_reading(state_dir: Path) -> sqlite3.Connection:
    """A read-only connection for the CLI; it never creates the file and never writes."""
    path = state_dir / DB_NAME
    if not path.exists():
        raise StoreError(f"no job records at {path} (has `hostpipe serve` run with this --state-dir?)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.execute("PRAGMA busy_timeout = 5000")
    try:
        version = schema_version(conn)
    except sqlite3.DatabaseError as error:
        conn.close()
        raise StoreCorrupt(f"{path} cannot be read: {error}") from error
    if version > SCHEMA_VERSION:
        conn.close()
        raise StoreCorrupt(f"{path} has schema version {version}; this hostpipe reads up to {SCHEMA_VERSION}")
    return conn
