"""Starting a job's process, so that its log file tells a restart whether it was ever started.

The daemon commits a job's start attempt, then spawns it. A daemon killed in between leaves a record that
says "attempted" and no process; the next daemon must tell "never started" (run it now) from "started and
already gone" (never run it twice). posix_spawn opens the job's log in the child, after the fork, with
O_EXCL: a log file exists exactly when a child was made to run the job. The child inherits the daemon's
working folder (the daemon user's HOME, where relative paths in lines point), starts a session of its own
(so stopping the job reaches its whole group), reads nothing (stdin is /dev/null) and writes stdout and
stderr into the log. Descriptors the daemon holds are all close-on-exec, so none reaches the job. Every
signal starts at its default and none is blocked: the interpreter ignores SIGPIPE and SIGXFSZ, `nohup`
ignores SIGHUP, and exec keeps what is ignored, so without this a job would never die of them.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW
_DEFAULTS = tuple(
    number
    for number in signal.valid_signals()
    if number not in (signal.SIGKILL, signal.SIGSTOP) and number < signal.SIGRTMIN
)
"""The signals a child sets back to their defaults before it execs (the realtime ones are left as they are)."""


def spawn(argv: Sequence[str], env: Mapping[str, str], log: Path, *, log_flags: int = LOG_FLAGS) -> int:
    """Start `argv` (argv[0] an absolute path) with its output in `log`; return its pid. Raises OSError."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), log_flags, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(
        argv[0], list(argv), dict(env), file_actions=actions, setsid=True, setsigdef=_DEFAULTS, setsigmask=()
    )


def prelude(argv: Sequence[str], *, cgroup_procs: Path | None, nofile: int | None) -> tuple[str, ...]:
    """`argv`, run after the child itself has set what must hold before the job's program starts.

    posix_spawn cannot write a file or set a limit in the child, and doing either from the daemon after the
    spawn comes too late (a shell forks, and reads its limits, within a millisecond). So the child first runs
    `/bin/sh -c`: it lowers its soft limit of open files back to the one the daemon was given (the daemon
    raised its own, as systemd does), moves itself into the job's cgroup, and only then execs the job.
    """
    steps = []
    if nofile is not None:
        steps.append(f"ulimit -Sn {int(nofile)}")
    if cgroup_procs is not None:
        steps.append('echo 0 > "$0"')
    if not steps:
        return tuple(argv)
    script = " && ".join(steps) + ' && exec "$@"'
    return ("/bin/sh", "-c", script, str(cgroup_procs or "sh"), *argv)
