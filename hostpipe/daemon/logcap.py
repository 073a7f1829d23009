"""Each job's log capped on disk: its first quarter and its latest output kept, the middle freed.

A job writes its log itself: the child opens the file with O_APPEND (`spawn`), and the daemon holds no
descriptor of it and never sees a byte of the output, so nothing here costs the daemon anything per line. Once
per tick, on a thread, the log of each live job is looked at (one `stat` while it is under the cap). A log
that holds more than `log_cap` bytes gets a hole punched in its middle (`fallocate(PUNCH_HOLE|KEEP_SIZE)`),
from the end of its first quarter to where its latest three quarters begin, block-aligned: the blocks are
freed, the file keeps its size, and the job's writes go on landing at its end. The record's `log_dropped`
says how many bytes are holes, and readers show where they were (`logholes`). The tick after a job ends looks at its log
once more, for what it wrote since the last look.

On disk a log therefore holds at most `log_cap`, plus what the job writes between two looks (a second). On a
filesystem that cannot punch holes the log is not capped; the daemon says so once (`log_cap_unsupported`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from hostpipe.core.policy import Policy
from hostpipe.daemon.events import Listener
from hostpipe.daemon.logholes import dropped_bytes
from hostpipe.daemon.store import Store

if TYPE_CHECKING:
    from hostpipe.core.job import Outcome
    from hostpipe.daemon.executor import Job

log = structlog.get_logger("hostpipe.logcap")

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})

_libc = ctypes.CDLL(None, use_errno=True)
_fallocate = _libc.fallocate
_fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_fallocate.restype = ctypes.c_int


def punch_hole(fd: int, offset: int, length: int) -> None:
    """Free the blocks of `length` bytes at `offset`; the file keeps its size. Raises OSError."""
    if _fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


@dataclass(frozen=True)
class Looked:
    job_id: int
    dropped: int | None = None
    """Bytes of the log that are holes, when the log is over its cap or has been; None: nothing to say."""
    error: OSError | None = None
    device: int = 0


def cap_log(path: Path, cap: int) -> int | None:
    """Keep at most `cap` bytes of the log at `path` on disk; return how many of its bytes are dropped.

    None when the log is no longer than the cap (nothing was ever dropped from it). Raises OSError, and
    FileNotFoundError for a log that does not exist (yet, or any more).
    """
    if os.stat(path).st_size <= cap:
        return None
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        size = info.st_size
        dropped = dropped_bytes(fd, size)
        block = info.st_blksize or 4096
        if size - dropped > cap + block:
            head = max(block, cap // 4 // block * block)
            end = (size - (cap - head)) // block * block
            if end > head:
                punch_hole(fd, head, end - head)
                dropped = dropped_bytes(fd, size)
        return dropped
    finally:
        os.close(fd)


def _look(jobs: list[tuple[int, Path]], cap: int) -> list[Looked]:
    """On a thread: cap each log, and say what changed."""
    looked = []
    for job_id, path in jobs:
        try:
            dropped = cap_log(path, cap)
        except FileNotFoundError:
            continue
        except OSError as error:
            device = 0
            with contextlib.suppress(OSError):
                device = os.stat(path).st_dev
            looked.append(Looked(job_id, error=error, device=device))
            continue
        if dropped is not None:
            looked.append(Looked(job_id, dropped))
    return looked


class LogCap(Listener):
    """Looks at the logs of live jobs once per tick, and once more at the logs of jobs that ended since."""

    def __init__(
        self,
        *,
        store: Store,
        policy: Callable[[], Policy],
        live: Callable[[], list[tuple[int, Path]]],
    ) -> None:
        self._store = store
        self._policy = policy
        self._live = live
        self._loop = asyncio.get_running_loop()
        self._recorded: dict[int, int] = {}
        """What `log_dropped` says for each live job that has had bytes dropped."""
        self._ended: list[tuple[int, Path]] = []
        """Logs of jobs that ended since the last look: each is looked at once more, for its last output."""
        self._busy = False
        self._warned_devices: set[int] = set()
        """Filesystems (st_dev) already reported as unable to punch holes."""
        self._warned_jobs: set[int] = set()

    def job_finished(self, job: Job, outcome: Outcome) -> None:
        if job.log_path is not None:
            self._ended.append((job.id, job.log_path))

    def tick(self, now: float) -> None:
        cap = self._policy().log_cap
        if self._busy:
            return
        ended, self._ended = self._ended, []
        if not cap:
            self._forget(ended)
            return
        jobs = [*self._live(), *ended]
        if not jobs:
            return
        self._busy = True
        future = self._loop.run_in_executor(None, _look, jobs, cap)
        future.add_done_callback(lambda done: self._looked(done, ended))

    def _looked(self, done: asyncio.Future[list[Looked]], ended: list[tuple[int, Path]]) -> None:
        self._busy = False
        try:
            results = done.result()
        except Exception:  # a bug here must not stop the daemon; the next tick looks again
            log.exception("log_cap_failed")
            results = []
        for looked in results:
            if looked.error is not None:
                self._failed(looked)
                continue
            assert looked.dropped is not None
            before = self._recorded.get(looked.job_id)
            if before is None or looked.dropped > before:
                if before is None and looked.dropped:
                    log.info("log_capped", job=looked.job_id, cap=self._policy().log_cap, dropped=looked.dropped)
                self._recorded[looked.job_id] = looked.dropped
                self._store.write("dropped", (looked.dropped, looked.job_id))
        self._forget(ended)

    def _forget(self, ended: list[tuple[int, Path]]) -> None:
        for job_id, _ in ended:
            self._recorded.pop(job_id, None)
            self._warned_jobs.discard(job_id)

    def _failed(self, looked: Looked) -> None:
        error = looked.error
        assert error is not None
        if error.errno in _UNSUPPORTED:
            if looked.device not in self._warned_devices:
                self._warned_devices.add(looked.device)
                log.error(
                    "log_cap_unsupported",
                    job=looked.job_id,
                    error=str(error),
                    note="the filesystem of the logs cannot punch holes: logs there are not capped",
                )
            return
        if looked.job_id not in self._warned_jobs:
            self._warned_jobs.add(looked.job_id)
            log.warning("log_cap_failed", job=looked.job_id, error=str(error))
