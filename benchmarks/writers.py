"""Writers that behave like pods: open the pipe, write one line, close it, once per line.

Each writer is a forked process, so writers never wait on one another's interpreter lock and the latency a
writer measures is the pipe's, not the harness's. A write that does not finish within its timeout (the old
loop blocks writers while it runs a job) is interrupted by an interval timer and recorded as timed out.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import cast


@dataclass(frozen=True)
class Plan:
    """One writer's work: `lines` as (job id, line) pairs, the k-th due at `start_at + k * interval`."""

    pipe: Path
    lines: Sequence[tuple[str, str]]
    start_at: float  # time.monotonic() value, shared by forked processes
    interval: float = 0.0
    timeout: float = 5.0


@dataclass(frozen=True)
class Write:
    """What became of one line: when its open began and its write returned (wall clock, ns), and how long."""

    job_id: str
    began_ns: int
    written_ns: int | None
    latency_s: float
    outcome: str  # "ok", "timeout", "error: ...", or "no result" when the writer itself failed

    @property
    def ok(self) -> bool:
        return self.written_ns is not None


class _WriteTimeout(Exception):
    pass


def _on_alarm(_signum: int, _frame: FrameType | None) -> None:
    raise _WriteTimeout


def _write_line(pipe: Path, data: bytes, timeout: float) -> tuple[int | None, str]:
    written: int | None = None
    outcome = "ok"
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        fd = os.open(pipe, os.O_WRONLY)
        try:
            os.write(fd, data)
            written = time.time_ns()
        finally:
            os.close(fd)
    except _WriteTimeout:
        outcome = "timeout"
    except OSError as error:
        outcome = f"error: {error.strerror}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    # A timer that fires during close() comes after the line reached the pipe: the line counts as written.
    return written, "ok" if written is not None else outcome


def _writer(plan: Plan, conn: Connection) -> None:
    signal.signal(signal.SIGALRM, _on_alarm)
    rows: list[tuple[str, int, int | None, float, str]] = []
    for k, (job_id, line) in enumerate(plan.lines):
        delay = plan.start_at + k * plan.interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        began = time.time_ns()
        t0 = time.perf_counter()
        written, outcome = _write_line(plan.pipe, (line + "\n").encode(), plan.timeout)
        rows.append((job_id, began, written, time.perf_counter() - t0, outcome))
    conn.send(rows)
    conn.close()


def split(lines: Sequence[tuple[str, str]], writers: int) -> list[list[tuple[str, str]]]:
    """Deal `lines` round-robin to `writers` writers (so the order of ids interleaves across writers)."""
    return [list(lines[i::writers]) for i in range(writers) if lines[i::writers]]


def run_writers(plans: Sequence[Plan], timeout: float) -> list[Write]:
    """Run one forked writer per plan; return every line's Write once all finish or `timeout` seconds pass."""
    context = multiprocessing.get_context("fork")
    pending: dict[Connection, tuple[BaseProcess, Plan]] = {}
    for plan in plans:
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_writer, args=(plan, sender), daemon=True)
        child.start()
        sender.close()
        pending[receiver] = (child, plan)

    writes: list[Write] = []
    deadline = time.monotonic() + timeout
    while pending and (left := deadline - time.monotonic()) > 0:
        for ready in multiprocessing.connection.wait(list(pending), timeout=left):
            conn = cast(Connection, ready)
            process, plan = pending.pop(conn)
            try:
                rows: list[tuple[str, int, int | None, float, str]] = conn.recv()
            except EOFError:
                rows = [(job_id, 0, None, 0.0, "no result") for job_id, _ in plan.lines]
            writes.extend(Write(*row) for row in rows)
            process.join(timeout=5)
    for process, plan in pending.values():
        process.kill()
        process.join(timeout=5)
        writes.extend(Write(job_id, 0, None, 0.0, "no result") for job_id, _ in plan.lines)
    return writes
