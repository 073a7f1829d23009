"""Every process the harness starts, so that each one is stopped however the run ends.

Readers and xargs are started in their own session; stopping one kills its whole process group. Jobs that
hostpipe starts live in process groups of their own, which the daemon stops on SIGTERM; `sweep_jobs` finds any
that outlived it through the process ids in the stamp file, kills them, and says how many there were.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from procstat import command_line
from stamps import read_stamps

_started: list[subprocess.Popen[bytes]] = []


def start(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    """Popen `argv` in a new session and remember it for `stop_all`."""
    process: subprocess.Popen[bytes] = subprocess.Popen(argv, start_new_session=True, **kwargs)  # type: ignore[call-overload]
    _started.append(process)
    return process


def kill_group(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGKILL the process group led by `process` and reap the leader."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)


def stop_all() -> None:
    """Kill every process group this harness started (a no-op for those already gone)."""
    while _started:
        kill_group(_started.pop())


def sweep_jobs(stamps_path: Path, markers: tuple[str, ...] = ("sleep", "docker")) -> int:
    """Kill stand-in jobs from `stamps_path` that are still alive; return how many were.

    A process counts as one of ours only while its command line still names the stand-in or `sleep`, which
    guards against a process id reused since the stamp was written.
    """
    stamps = read_stamps(stamps_path)
    alive = 0
    for job_id, pids in stamps.pids.items():
        if job_id in stamps.ends:
            continue
        for pid in pids:
            argv = command_line(pid)
            if argv and any(marker in part for part in argv[:2] for marker in markers):
                alive += 1
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
    return alive
