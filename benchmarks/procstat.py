"""Memory and CPU time of a running process, read from /proc: what the kernel says a reader costs.

VmHWM is the peak resident set size over the process's life; VmRSS is the current one. Both cover the one
process only, not its children: for hostpipe that is the daemon without its jobs, for the old loop the loop's
bash without the `cat` and the commands it runs. Sizes are in MB of 10^6 bytes, the stricter reading of a
target given in MB. CPU time per line or per job is the figure that least depends on what else the machine
is doing at the time.

hostpipe is three processes: `hostpipe serve` is a holder that keeps the pipe, its child is the daemon, and the
daemon's child is the store's writer. Its CPU is the sum of the three (`cpu_seconds_each`); the jobs are children
too, but their time is never counted (utime and stime are the process's own, not its reaped children's).
"""

from __future__ import annotations

import os
from pathlib import Path


def _status_kib(pid: int, key: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM of `pid` in MB (10^6 bytes; None once the process is gone)."""
    kib = _status_kib(pid, "VmHWM")
    return None if kib is None else kib * 1024 / 1e6


def rss_mb(pid: int) -> float | None:
    """VmRSS of `pid` in MB (10^6 bytes; None once the process is gone)."""
    kib = _status_kib(pid, "VmRSS")
    return None if kib is None else kib * 1024 / 1e6


def command_line(pid: int) -> list[str]:
    """The argv of `pid`, or [] when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time `pid` has used so far, all its threads included (None once it is gone)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    fields = data[data.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_each(pids: list[int]) -> list[float] | None:
    """`cpu_seconds` of each of `pids`, in order (None if any of them is gone)."""
    each = [cpu_seconds(pid) for pid in pids]
    return None if any(seconds is None for seconds in each) else [s for s in each if s is not None]
