"""Processes that leave their job: the daemon as their subreaper, ending them when their job has ended.

A job runs in a session and process group of its own, and stopping the job signals that group. A process that
calls `setsid` (or merely its own process group) leaves it, and no signal to the group reaches it any more. The
daemon marks itself a child subreaper (PR_SET_CHILD_SUBREAPER), so such a process, once its parent has exited,
becomes the daemon's child instead of init's. Every job's environment carries its marker (HOSTPIPE_JOB), which
its descendants inherit; so the daemon can tell whose an adopted orphan is, and end it once that job has ended
(a moment after, so that an engine's monitor finishes its cleanup: podman's conmon is such an orphan, and must
live as long as the container it watches). An orphan that also cleared its environment cannot be told apart;
per-job cgroups (`jobcgroups`) catch it where the host offers them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Iterable

from hostpipe.daemon.procs import JOB_MARKER

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants this process's children. False where the kernel refuses."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def children() -> list[int]:
    """This process's children, from every thread (spawns from any thread are children too)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/children") as listing:
                found.extend(int(pid) for pid in listing.read().split())
    return found


def marker_of(pid: int, store_id: str) -> int | None:
    """The job id in a process's marker, when it carries one of this store."""
    prefix = f"{JOB_MARKER}={store_id}:".encode()
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            data = environ.read()
    except OSError:
        return None
    for item in data.split(b"\0"):
        if item.startswith(prefix):
            with contextlib.suppress(ValueError):
                return int(item[len(prefix) :])
    return None


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return False
    return data[data.rindex(b")") + 2 : data.rindex(b")") + 3] == b"Z"


class Reaper:
    """Ends and reaps the orphans of ended jobs; leaves every other child of the daemon alone."""

    def __init__(self, store_id: str) -> None:
        self._store_id = store_id
        self.ended: int = 0
        """Orphans ended so far (for the log and the tests)."""

    def sweep(self, known: Iterable[int], live_jobs: Iterable[int]) -> list[tuple[int, int]]:
        """SIGKILL each child carrying the marker of a job that is not live, reap marked zombies.

        `known` are the daemon's own children (job leaders, helpers, the store writer, `RUNTIME stop`s) that
        their owners wait for; every other child is an orphan, reaped here once it is a zombie. Returns the
        (pid, job id) of the orphans ended.
        """
        own = set(known)
        live = set(live_jobs)
        ended = []
        for pid in children():
            if pid in own:
                continue
            if _zombie(pid):
                # An orphan that has ended (a zombie's environment is gone, so its marker cannot be read).
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
                continue
            job = marker_of(pid, self._store_id)
            if job is None:
                continue
            if job not in live:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                ended.append((pid, job))
        self.ended += len(ended)
        return ended
