"""The daemon's side of the store: batches handed to the writer process, acted on only once committed.

Everything the daemon records (a batch of lines, a job's start attempt, start, end) is queued here and sent to
the writer process (`writer`) once per event-loop round, one batch in flight at a time; what arrives while a
batch is in flight goes in the next one, so batches grow with load and the loop never waits on the disk. A
caller that must not act before the commit (start a job only once its line is recorded) gets a future.

The daemon numbers records itself, from the writer's next free id, so a batch can be retried as it is. A batch
that fails (locked, full, read-only, corrupt) is kept and retried with back-off; a writer that dies (SIGBUS on
an immutable state folder) is started again and given the same batch under the same number, which it skips if
it had committed it. The store's health is reported once per change (healthy -> degraded -> healthy), never
once per line.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import structlog

from hostpipe.core.job import JobState, Outcome
from hostpipe.daemon.schema import DB_NAME, StoreCorrupt, StoreError
from hostpipe.daemon.wire import Decoder, encode
from hostpipe.daemon.writerproc import start_writer

log = structlog.get_logger("hostpipe.store")

__all__ = ["NewJob", "Store", "StoreCorrupt", "StoreError"]

_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 5.0


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
    start_attempt: float | None = None
    """Set when the job is to start as soon as the batch is committed, so the start attempt is recorded with it."""
    summary: str | None = None
    """A summary of refused lines (hostpipe.daemon.refusals): its key, by which its count is brought up to date."""
    reply_nonce: str | None = None
    """The nonce of the submitter's reply key, and the SHA-256 of its token (hostpipe.core.replies)."""
    token_hash: str | None = None


@dataclass
class _Item:
    kind: str
    rows: list[Any]
    future: asyncio.Future[Any] | None = None
    ids: list[int] = field(default_factory=list)
    """For inserts: the ids given to the records, assigned when the batch is built."""


@dataclass
class _Batch:
    seq: int
    items: list[_Item]
    frame: bytes


@functools.lru_cache(maxsize=1024)
def _argv_json(argv: tuple[str, ...]) -> str:
    """A repeated line (a refusal flood, a retried job) has the same argv: its JSON is made once."""
    return json.dumps(list(argv))


def _insert_row(job_id: int, job: NewJob) -> tuple[Any, ...]:
    argv = job.argv
    return (
        job_id,
        job.pod,
        job.client_id,
        job.line,
        None if argv is None else _argv_json(argv) if type(argv) is tuple else json.dumps(list(argv)),
        job.runtime,
        job.image,
        str(job.state),
        job.rule,
        job.argument,
        job.reason,
        job.timeout,
        job.submitted_at,
        job.start_attempt,
        job.summary,
        job.reply_nonce,
        job.token_hash,
    )


@dataclass(frozen=True)
class Hello:
    fresh: bool
    """The file had no schema: a new store (or one whose folder was removed while the daemon ran)."""
    next_id: int
    meta: dict[str, Any]


HealthListener = Callable[[bool, str | None], None]


class Store:
    """The writer process, the batches queued for it, and the store's health."""

    def __init__(
        self,
        state_dir: Path,
        *,
        on_health: HealthListener | None = None,
        on_fresh: Callable[[], list[tuple[str, list[Any]]]] | None = None,
        started: tuple[subprocess.Popen[bytes], socket.socket] | None = None,
    ) -> None:
        """`started`: a writer already started for `state_dir` (`writerproc`), taken over at `open`."""
        self.path = state_dir / DB_NAME
        self._started = started
        self._loop = asyncio.get_running_loop()
        self._on_health = on_health
        self._on_fresh = on_fresh
        self._pending: list[_Item] = []
        self._inflight: _Batch | None = None
        self._seq = 0
        self.next_id = 1
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._decoder = Decoder()
        self._out = bytearray()
        self._ready = False
        self._hello: asyncio.Future[Hello] | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._retry_handle: asyncio.TimerHandle | None = None
        self._backoff = _BACKOFF_FIRST
        self._idle = asyncio.Event()
        self._idle.set()
        self.degraded: str | None = None
        """Why the store cannot write right now, or None when it is healthy."""
        self.errors: collections.Counter[str] = collections.Counter()
        """Failed writes and writer ends so far, by kind (every one, reported or not), for the metrics."""
        self._degraded_since = 0.0
        self._closing = False
        self._started_once = False
        self._fatal = False

    # -- the writer process ---------------------------------------------------------------------------------

    async def open(self) -> Hello:
        """Start the writer and wait for it to open the file. Raises StoreCorrupt for a file it cannot use.

        A store that is only unavailable (locked, full, unreadable for now) is waited for, with back-off.
        """
        while True:
            self._hello = self._loop.create_future()
            self._spawn()
            try:
                hello = await self._hello
            except StoreCorrupt:
                raise
            except StoreError:
                await asyncio.sleep(self._next_backoff())
                continue
            self._started_once = True
            return hello

    def _spawn(self) -> None:
        started, self._started = self._started, None
        try:
            self._process, parent = started or start_writer(self.path)
        except OSError as error:
            self._degrade("spawn", f"cannot start the store writer: {error}")
            if self._hello is not None and not self._hello.done():
                self._hello.set_exception(StoreError(str(error)))
            else:
                self._schedule_restart()
            return
        with contextlib.suppress(OSError):
            # A new socket's buffer is empty: this never blocks. The writer opens the file only once asked; one
            # that has died already is noticed by the reader below.
            parent.sendall(encode(("open",)))
        parent.setblocking(False)
        self._sock = parent
        self._decoder = Decoder()
        self._out.clear()
        self._loop.add_reader(parent.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._writer_lost()
            return
        for message in self._decoder.feed(data):
            self._on_message(message)

    def _on_message(self, message: Any) -> None:
        kind = message[0]
        if kind == "hello":
            self._on_hello(Hello(bool(message[1]), int(message[2]), dict(message[3])))
        elif kind == "ack":
            self._on_ack(message[1])
        elif kind == "nack":
            self._on_nack(message[1], message[2], message[3], message[4])
        elif kind == "fatal":
            error_kind, text = message[1], message[2]
            self._fatal = True
            if self._hello is not None and not self._hello.done():
                error = StoreCorrupt(text) if error_kind == "corrupt" else StoreError(text)
                self._hello.set_exception(error)
            self._degrade(error_kind, text)

    def _on_hello(self, hello: Hello) -> None:
        self.next_id = max(self.next_id, hello.next_id)
        # Batch numbers go on from the file's last committed one: a lower number would be taken for a batch the
        # file already holds.
        self._seq = max(self._seq, int(hello.meta.get("batch", 0)))
        self._ready = True
        if hello.fresh and self._started_once and self._on_fresh is not None:
            # The file was created anew under a running daemon (its folder was removed): put back the records
            # of what is still live, before anything that refers to them.
            log.error("store_recreated", path=str(self.path), note="records of live jobs are written again")
            restored = [_Item(kind, rows) for kind, rows in self._on_fresh()]
            if self._inflight is not None:
                restored += self._inflight.items
                self._inflight = None
            self._pending[:0] = restored
        if self._hello is not None and not self._hello.done():
            self._hello.set_result(hello)
        if self._inflight is not None:
            self._send(self._inflight.frame)
        else:
            self._schedule()

    def _writer_lost(self) -> None:
        self._ready = False
        self._close_socket()
        how = "its exit status is not known yet"
        if self._process is not None:
            try:
                code = self._process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self._process.kill()
                code = self._process.wait()
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        if self._closing and self._inflight is None and not self._pending:
            return
        if not self._fatal:
            # A writer that said why it cannot go on has been reported already; only an unexplained end is news.
            self._degrade("writer", f"the store writer ended ({how})")
        self._fatal = False
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(StoreError(f"the store writer ended ({how})"))
            return
        self._schedule_restart()

    def _schedule_restart(self) -> None:
        if self._closing:
            return
        self._loop.call_later(self._next_backoff(), self._spawn)

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._loop.remove_writer(self._sock.fileno())
            self._sock.close()
            self._sock = None

    # -- sending --------------------------------------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        if self._sock is None:
            return
        self._out += frame
        self._write_out()

    def _write_out(self) -> None:
        assert self._sock is not None
        try:
            sent = self._sock.send(self._out)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._writer_lost()
            return
        del self._out[:sent]
        if self._out:
            self._loop.add_writer(self._sock.fileno(), self._write_out)
        else:
            self._loop.remove_writer(self._sock.fileno())

    def _schedule(self) -> None:
        if self._flush_handle is None and self._inflight is None and self._ready and self._pending:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        if self._inflight is not None or not self._pending or not self._ready:
            return
        items, self._pending = self._pending, []
        self._seq += 1
        self._inflight = self._build(self._seq, items)
        self._send(self._inflight.frame)

    def _build(self, seq: int, items: list[_Item]) -> _Batch:
        """The batch's frame, with ids given to its new records and consecutive ops of one kind merged."""
        ops: list[tuple[str, list[Any]]] = []
        for item in items:
            rows = item.rows
            if item.kind == "insert":
                item.ids = list(range(self.next_id, self.next_id + len(rows)))
                self.next_id += len(rows)
                rows = [_insert_row(job_id, job) for job_id, job in zip(item.ids, rows, strict=True)]
            if ops and ops[-1][0] == item.kind:
                ops[-1][1].extend(rows)
            else:
                ops.append((item.kind, list(rows)))
        return _Batch(seq, items, encode(("batch", seq, ops)))

    # -- answers --------------------------------------------------------------------------------------------

    def _on_ack(self, seq: int) -> None:
        batch = self._inflight
        if batch is None or batch.seq != seq:
            return
        self._inflight = None
        self._backoff = _BACKOFF_FIRST
        self._recovered()
        for item in batch.items:
            if item.future is not None and not item.future.done():
                item.future.set_result(item.ids if item.kind == "insert" else None)
        if self._pending:
            self._flush()
        else:
            self._idle.set()

    def _on_nack(self, seq: int, kind: str, text: str, next_free: int) -> None:
        batch = self._inflight
        if batch is None or batch.seq != seq:
            return
        if kind == "conflict":
            # Ids the store already holds (a file changed behind the daemon's back): number the batch anew.
            log.warning("store_id_conflict", error=text, next_id=next_free)
            self.next_id = max(self.next_id, next_free)
            self._inflight = self._build(seq, batch.items)
            self._send(self._inflight.frame)
            return
        self._degrade(kind, text)
        self._retry_handle = self._loop.call_later(self._next_backoff(), self._retry)

    def _retry(self) -> None:
        self._retry_handle = None
        if self._inflight is not None and self._ready:
            self._send(self._inflight.frame)

    def _next_backoff(self) -> float:
        delay = self._backoff
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX)
        return delay

    def _degrade(self, kind: str, text: str) -> None:
        self.errors[kind] += 1
        reason = f"{kind}: {text}"
        if self.degraded == reason:
            return
        if self.degraded is None:
            self._degraded_since = time.monotonic()
        self.degraded = reason
        log.error(
            "store_degraded",
            kind=kind,
            error=text,
            path=str(self.path),
            note="lines stay in the pipe and the inbox; writes are retried until the store is back",
        )
        if self._on_health is not None:
            self._on_health(False, reason)

    def _recovered(self) -> None:
        if self.degraded is None:
            return
        log.info("store_recovered", after=round(time.monotonic() - self._degraded_since, 3), was=self.degraded)
        self.degraded = None
        if self._on_health is not None:
            self._on_health(True, None)

    # -- the daemon's calls ---------------------------------------------------------------------------------

    def insert(self, records: Sequence[NewJob]) -> asyncio.Future[list[int]]:
        """Queue new records; the future gives their ids once they are committed."""
        future: asyncio.Future[list[int]] = self._loop.create_future()
        self._queue(_Item("insert", list(records), future))
        return future

    def write(self, kind: str, row: tuple[Any, ...], *, wait: bool = False) -> asyncio.Future[None] | None:
        """Queue one row of an update (`started`, `finished`, `attempt`, `container`, `meta`, ...)."""
        future: asyncio.Future[None] | None = self._loop.create_future() if wait else None
        if not wait and self._pending and self._pending[-1].kind == kind and self._pending[-1].future is None:
            self._pending[-1].rows.append(row)
            return None
        self._queue(_Item(kind, [row], future))
        return future

    def finished(self, job_id: int, outcome: Outcome, ended_at: float) -> None:
        """Queue a job's terminal state (with its exit code or signal and the reason)."""
        row = (str(outcome.state), outcome.exit_code, outcome.signal, outcome.reason, ended_at, None, job_id)
        self.write("finished", row)

    def _queue(self, item: _Item) -> None:
        self._pending.append(item)
        self._idle.clear()
        self._schedule()

    @property
    def backlog(self) -> int:
        """Items not yet committed."""
        inflight = len(self._inflight.items) if self._inflight is not None else 0
        return inflight + len(self._pending)

    async def close(self, timeout: float) -> int:
        """Wait (bounded) until everything queued is committed, then stop the writer. Returns what was not."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        left = self.backlog
        self._closing = True
        for handle in (self._flush_handle, self._retry_handle):
            if handle is not None:
                handle.cancel()
        self._close_socket()
        if self._process is not None:
            try:
                await asyncio.to_thread(self._process.wait, 10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        return left

    def reopen(self) -> None:
        """Start a new writer (the file was removed under it): it opens, or creates, the file at the same path."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()

    @property
    def writer_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None
