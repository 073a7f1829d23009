"""Starting a job's process, so that its log file tells a restart whether it was ever started.

The daemon commits a job's start attempt, then spawns it. A daemon killed in between leaves a record that
says "attempted" and no process; the next daemon must tell "never started" (run it now) from "started and
already gone" (never run it twice). posix_spawn opens the job's log in the child, after the fork, with
O_EXCL: a log file exists exactly when a child was made to run the job. The child inherits the daemon's
working folder (the daemon user's HOME, where relative paths in lines point), starts a session of its own
(so stopping the job reaches its whole group), reads nothing (stdin is /dev/null) and writes stdout and
stderr into the log.

No other descriptor reaches the job: the child closes every descriptor from 3 up before it execs
(`posix_spawn_file_actions_addclosefrom_np`, glibc 2.34 and later), whether or not it was marked
close-on-exec. Marking is not enough: descriptors a C library opens (an inotify instance) or the daemon was
handed (the socket to its holder) are inheritable unless someone remembers, and a job that inherits the
holder's socket could hand the holder a pipe of its own. Where libc lacks closefrom, every descriptor is
marked close-on-exec just before the spawn instead.

Every signal starts at its default and none is blocked: the interpreter ignores SIGPIPE and SIGXFSZ,
`nohup` ignores SIGHUP, and exec keeps what is ignored, so without this a job would never die of them.

libc's posix_spawn is called through ctypes (`os.posix_spawn` has no closefrom), which also lets go of the
interpreter lock while the child is being made, so the daemon's other threads run meanwhile.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW

_SETSIGDEF, _SETSIGMASK, _SETSID = 0x04, 0x08, 0x80
"""posix_spawnattr flags, the same in glibc (SETSID since 2.26) and musl."""
_OPAQUE = 1024
"""Bytes set aside for libc's posix_spawn_file_actions_t, posix_spawnattr_t and sigset_t (glibc: 80, 336, 128)."""

_libc = ctypes.CDLL(None, use_errno=True)
_posix_spawn = _libc.posix_spawn
_posix_spawn.argtypes = [
    ctypes.POINTER(ctypes.c_int),
    ctypes.c_char_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
]
_addopen = _libc.posix_spawn_file_actions_addopen
_addopen.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint]
_adddup2 = _libc.posix_spawn_file_actions_adddup2
_adddup2.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
_addclosefrom = getattr(_libc, "posix_spawn_file_actions_addclosefrom_np", None)
if _addclosefrom is not None:
    _addclosefrom.argtypes = [ctypes.c_void_p, ctypes.c_int]


def _checked(code: int, what: str) -> None:
    if code != 0:
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _attributes() -> ctypes.Array[ctypes.c_char]:
    """The one set of attributes every child gets: a session of its own, default signals, none blocked."""
    attributes = ctypes.create_string_buffer(_OPAQUE)
    defaults, blocked = ctypes.create_string_buffer(_OPAQUE), ctypes.create_string_buffer(_OPAQUE)
    _checked(_libc.sigemptyset(defaults), "sigemptyset")
    _checked(_libc.sigemptyset(blocked), "sigemptyset")
    for number in signal.valid_signals():
        if number not in (signal.SIGKILL, signal.SIGSTOP) and number < signal.SIGRTMIN:
            _checked(_libc.sigaddset(defaults, int(number)), "sigaddset")
    _checked(_libc.posix_spawnattr_init(attributes), "posix_spawnattr_init")
    flags = ctypes.c_short(_SETSID | _SETSIGDEF | _SETSIGMASK)
    _checked(_libc.posix_spawnattr_setflags(attributes, flags), "posix_spawnattr_setflags")
    _checked(_libc.posix_spawnattr_setsigdefault(attributes, defaults), "posix_spawnattr_setsigdefault")
    _checked(_libc.posix_spawnattr_setsigmask(attributes, blocked), "posix_spawnattr_setsigmask")
    return attributes


_ATTRIBUTES = _attributes()


def _mark_all_close_on_exec() -> None:
    """Without closefrom in libc: every descriptor this process holds from 3 up is marked close-on-exec."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            with contextlib.suppress(OSError):
                os.set_inheritable(fd, False)


def spawn(argv: Sequence[str], env: Mapping[str, str], log: Path, *, log_flags: int = LOG_FLAGS) -> int:
    """Start `argv` (argv[0] an absolute path) with its output in `log`; return its pid. Raises OSError
    (the child's own failure too: a log it could not open, a program it could not execute)."""
    words = [os.fsencode(word) for word in argv]
    arguments = (ctypes.c_char_p * (len(words) + 1))(*words, None)
    pairs = [os.fsencode(key) + b"=" + os.fsencode(value) for key, value in env.items()]
    environment = (ctypes.c_char_p * (len(pairs) + 1))(*pairs, None)
    actions = ctypes.create_string_buffer(_OPAQUE)
    _checked(_libc.posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init")
    try:
        _checked(_addopen(actions, 0, b"/dev/null", os.O_RDONLY, 0), "addopen")
        _checked(_addopen(actions, 1, os.fsencode(log), log_flags, 0o600), "addopen")
        _checked(_adddup2(actions, 1, 2), "adddup2")
        if _addclosefrom is not None:
            _checked(_addclosefrom(actions, 3), "addclosefrom")
        else:
            _mark_all_close_on_exec()
        pid = ctypes.c_int()
        code = _posix_spawn(ctypes.byref(pid), words[0], actions, _ATTRIBUTES, arguments, environment)
    finally:
        _libc.posix_spawn_file_actions_destroy(actions)
    if code != 0:
        raise OSError(code, os.strerror(code), argv[0])
    return pid.value


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
