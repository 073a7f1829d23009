"""Facts about processes that outlive one daemon: start times that tell a reused pid apart, group signals."""

from __future__ import annotations

import contextlib
import os
import signal


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when no such process exists."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            data = stat_file.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count the fields after its closing one.
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[19])


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


JOB_MARKER = "HOSTPIPE_JOB"
"""The variable every job's environment carries: `STORE_ID:JOB_ID`, so a restart can find a job's processes."""


def job_marker(store_id: str, job_id: int) -> str:
    return f"{store_id}:{job_id}"


def find_marked(store_id: str) -> dict[int, list[int]]:
    """Processes of this user whose environment carries a job marker of this store: {job id: [pids]}."""
    prefix = f"{JOB_MARKER}={store_id}:".encode()
    found: dict[int, list[int]] = {}
    uid = os.geteuid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            with open(f"/proc/{entry.name}/environ", "rb") as environ:
                data = environ.read()
        except OSError:
            continue
        for item in data.split(b"\0"):
            if item.startswith(prefix):
                with contextlib.suppress(ValueError):
                    found.setdefault(int(item[len(prefix) :]), []).append(int(entry.name))
                break
    return found
