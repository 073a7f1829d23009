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
