"""Short engine commands the daemon runs for a job (`RUNTIME stop`, `RUNTIME rm`), on a pool of their own.

They run on stopper threads, never on the spawner's path or the event loop, so a slow engine delays no other
pod's job. While one runs, its pid is in `own`: the reaper (which reaps orphans the daemon adopts as their
subreaper) must leave the daemon's own children to the threads that wait for them.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class OwnChildren:
    """Pids of the daemon's children that some thread waits for itself."""

    _pids: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, pid: int) -> None:
        with self._lock:
            self._pids.add(pid)

    def discard(self, pid: int) -> None:
        with self._lock:
            self._pids.discard(pid)

    def snapshot(self) -> set[int]:
        with self._lock:
            return set(self._pids)


def run_command(
    argv: Sequence[str], env: Mapping[str, str], *, cwd: str, timeout: float, own: OwnChildren
) -> tuple[int, str]:
    """Run `argv` to its end (killed after `timeout`); return its exit status and the end of its stderr.

    Raises OSError when it cannot start.
    """
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )
    own.add(process.pid)
    try:
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        return process.returncode, stderr.decode(errors="replace").strip()[-500:]
    finally:
        own.discard(process.pid)
