"""The store writer: a small process of its own that owns the only writing connection to the records.

The daemon never touches sqlite while it serves. It hands this process batches of operations over a
socketpair and learns, one acknowledgement per batch, that they are committed. So a slow disk, a lock held by
another process or a full disk delays this process, never the loop that reads the pipe and reaps jobs. It is a
process rather than a thread because sqlite maps the WAL index (`-shm`) into memory: when that file cannot be
written (an immutable state folder, a disk error) the kernel answers a write to the mapping with SIGBUS, which
would kill the whole daemon. Here it kills only this process; the daemon reports the store as degraded, keeps
the lines where they are and starts a new writer after a back-off.

Protocol (see `wire`): the daemon first sends ("open",), and only then does the writer open the file: the daemon
may start the writer before it has checked its configuration (see `writerproc`), and a daemon that then gives up
leaves no records behind. The writer answers ("hello", fresh, next_id, meta). Then, for each ("batch", seq,
ops) it applies every op in one transaction together with the batch number, and answers ("ack", seq) or
("nack", seq, kind, text, next_id). A batch number it has already committed (the daemon resends a batch whose
acknowledgement a dead writer never sent) is acknowledged without being applied again.

Checkpoints (copying the WAL back into the database) are the writer's own, not sqlite's automatic ones. Each
costs the disk three syncs: the WAL before the copy, the database after it, and the WAL's header at the first
commit that starts the WAL over (synchronous=NORMAL). An automatic checkpoint runs inside the COMMIT that
crosses its threshold, and the commit after it syncs the header, so two batches in every few hundred waited
for the disk before their acknowledgement, and their jobs to start. Here a checkpoint runs once no batch has
come for `QUIET` seconds and `CHECKPOINT_ROWS` rows or `QUIET_AT_MOST` seconds of writes have gathered, and
it is followed at once by a write of no consequence that takes the header's sync; a batch that comes
meanwhile waits, but no batch pays for the checkpoint of its own commit. Under writes that never pause, a
checkpoint runs at the latest after `AT_LATEST` seconds or when the WAL file passes `WAL_LIMIT` bytes.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from hostpipe.daemon.schema import StoreCorrupt, open_for_writing
from hostpipe.daemon.wire import Decoder, encode

_JOB_COLUMNS = (
    "id, pod, client_id, line, argv, runtime, image, state, rule, argument, reason, exit_code, signal, pid, "
    "pid_start, timeout, submitted_at, started_at, ended_at, log, start_attempt, container_id, detached, log_dropped, "
    "lines, last_line, summary, reply_nonce, token_hash"
)
JOB_COLUMNS = tuple(name.strip() for name in _JOB_COLUMNS.split(","))

SQL: dict[str, str] = {
    "insert": "INSERT INTO jobs (id, pod, client_id, line, argv, runtime, image, state, rule, argument, reason,"
    " timeout, submitted_at, start_attempt, summary, reply_nonce, token_hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "attempt": "UPDATE jobs SET start_attempt = ? WHERE id = ?",
    "started": "UPDATE jobs SET state = ?, pid = ?, pid_start = ?, started_at = ?, log = ? WHERE id = ?",
    "finished": "UPDATE jobs SET state = ?, exit_code = ?, signal = ?, reason = COALESCE(?, reason),"
    " ended_at = ?, log = COALESCE(?, log) WHERE id = ?",
    "container": "UPDATE jobs SET container_id = ?, detached = ? WHERE id = ?",
    "dropped": "UPDATE jobs SET log_dropped = ? WHERE id = ?",
    # Fixed column names and placeholders only.
    "restore": f"INSERT OR REPLACE INTO jobs ({_JOB_COLUMNS}) VALUES ({', '.join('?' * len(JOB_COLUMNS))})",  # noqa: S608
    "meta": "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
    "delete": "DELETE FROM jobs WHERE id = ?",
    # A summary of refused lines brought up to date, in the batch that holds the inbox position of its lines.
    "summary": "UPDATE jobs SET lines = ?, last_line = ?, reason = ?, ended_at = ? WHERE summary = ?",
    # Retention: a record older than the cut-off, only once its job has ended (checked again as it is removed).
    "purge": "DELETE FROM jobs WHERE id = ? AND state NOT IN ('queued', 'running')"
    " AND COALESCE(ended_at, submitted_at) < ?",
}
"""Every statement the writer runs, by the name the daemon uses for it. Values are always bound parameters."""


def classify(error: sqlite3.Error) -> str:
    """A short name for why a write failed, for the daemon's one log line about the store's health."""
    text = str(error).lower()
    if isinstance(error, sqlite3.IntegrityError):
        return "conflict"
    if "locked" in text or "busy" in text:
        return "locked"
    if "full" in text:
        return "full"
    if "readonly" in text or "read-only" in text:
        return "read-only"
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return "corrupt"
    return "io"


def next_id(conn: sqlite3.Connection) -> int:
    (highest,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM jobs").fetchone()
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'jobs'").fetchone()
    return max(int(highest), int(row[0]) if row else 0) + 1


def read_meta(conn: sqlite3.Connection) -> dict[str, Any]:
    return {key: value for key, value in conn.execute("SELECT key, value FROM meta")}


def apply(conn: sqlite3.Connection, seq: int, ops: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
    """Every op of one batch, and the batch number, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for kind, rows in ops:
            conn.executemany(SQL[kind], rows)
        conn.execute(SQL["meta"], ("batch", seq))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


QUIET = 0.1
"""Seconds without a batch that count as a pause, in which a checkpoint may run."""
CHECKPOINT_ROWS = 256
"""Rows written since the last checkpoint for a pause to checkpoint them (sqlite's default is 1,000 pages)."""
QUIET_AT_MOST = 10.0
"""Seconds after which a pause checkpoints whatever was written, however little."""
AT_LATEST = 30.0
"""Seconds of writes without a pause after which a checkpoint runs even though batches keep coming."""
WAL_LIMIT = 4 << 20
"""Bytes of WAL file after which a checkpoint runs at once (then the WAL is cut back to 1 MiB)."""


class Writer:
    def __init__(self, sock: socket.socket, path: Path) -> None:
        self._sock = sock
        self._path = path
        self._wal = Path(f"{path}-wal")
        self._decoder = Decoder()
        self._conn: sqlite3.Connection | None = None
        self._unchecked_since: float | None = None
        """When the first batch not yet checkpointed was committed; None when the WAL holds nothing new."""
        self._unchecked_rows = 0

    def send(self, message: Any) -> None:
        self._sock.sendall(encode(message))

    def messages(self) -> Any:
        while True:
            pause = self._pause_to_checkpoint()
            if pause is not None and not select.select([self._sock], [], [], pause)[0]:
                self._checkpoint()  # a pause: no batch is waiting for its acknowledgement
                continue
            data = self._sock.recv(1 << 20)
            if not data:
                return
            yield from self._decoder.feed(data)

    def _pause_to_checkpoint(self) -> float | None:
        """How long a pause without batches must last for a checkpoint in it; None: nothing to checkpoint."""
        since = self._unchecked_since
        if since is None:
            return None
        if self._unchecked_rows >= CHECKPOINT_ROWS:
            return QUIET
        return max(QUIET, QUIET_AT_MOST - (time.monotonic() - since))

    def _committed(self, rows: int) -> None:
        now = time.monotonic()
        self._unchecked_rows += rows
        if self._unchecked_since is None:
            self._unchecked_since = now
        try:
            wal = os.stat(self._wal).st_size
        except OSError:
            wal = 0
        if wal > WAL_LIMIT or now - self._unchecked_since >= AT_LATEST:
            self._checkpoint()

    def _checkpoint(self) -> None:
        self._unchecked_since, self._unchecked_rows = None, 0
        if self._conn is None:
            return
        # PASSIVE: frames readers still use stay; a failure (a full disk) is met again at a later checkpoint.
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            # The commit that starts the WAL over syncs its header: this one, rather than the next batch.
            self._conn.execute(SQL["meta"], ("checkpointed_at", time.time()))

    def run(self) -> int:
        messages = self.messages()
        if next(messages, None) != ("open",):
            return 0  # the daemon went away (or spoke out of turn) before it asked for the records
        try:
            conn, fresh = open_for_writing(self._path)
        except StoreCorrupt as error:
            self.send(("fatal", "corrupt", str(error)))
            return 3
        except sqlite3.DatabaseError as error:
            kind = classify(error)
            self.send(("fatal", kind, f"{self._path}: {error}"))
            return 3 if kind == "corrupt" else 4
        except OSError as error:
            self.send(("fatal", "io", f"{self._path}: {error}"))
            return 4
        self._conn = conn
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the writer checkpoints itself, see above
        meta = read_meta(conn)
        done = int(meta.get("batch", 0))
        self.send(("hello", fresh, next_id(conn), meta))
        for message in messages:
            _, seq, ops = message
            if seq <= done:
                self.send(("ack", seq))
                continue
            try:
                apply(conn, seq, ops)
            except sqlite3.Error as error:
                kind = classify(error)
                if kind == "full":
                    # Committed pages still in the WAL can go to the database now and the WAL be cut short,
                    # which may be all the space the next try needs.
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self.send(("nack", seq, kind, str(error), next_id(conn) if kind == "conflict" else 0))
                continue
            done = seq
            self.send(("ack", seq))
            self._committed(sum(len(rows) for _, rows in ops))
        conn.close()
        return 0


def main(argv: list[str]) -> int:
    # The daemon decides when the writer stops: it closes the socket once its last batch is acknowledged.
    # A terminal's Ctrl-C or a service manager's SIGTERM to the whole group must not cut that short.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    fd, path = int(argv[1]), Path(argv[2])
    sock = socket.socket(fileno=fd)
    try:
        return Writer(sock, path).run()
    except (BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
