"""The holder: what keeps the pipe open when `hostpipe serve` runs without a service manager.

A pipe's buffer lives only while some process holds the pipe open. Under systemd the socket unit
(`ListenFIFO=`) holds it, so lines written while the daemon is down or restarting wait in the pipe. Run on its
own, `hostpipe serve` gets the same from a small supervising parent, the holder. It takes the state folder's
lock and runs the daemon as its child. The daemon checks its policy and opens the FIFO safely as always, then
hands the FIFO's descriptor up to the holder (SCM_RIGHTS over a socketpair). When the daemon dies (a crash,
SIGKILL, an out-of-memory kill) the holder still has the pipe and its buffer, and starts a new daemon after a
back-off, passing the pipe and the lock down; the new daemon records what the dead one left in the pipe and in
its inbox. The lock is held through the shared descriptor, so a holder and its daemon count as one daemon.

Its life: it forwards SIGTERM, SIGINT and SIGHUP to the daemon and exits with the daemon's own status when
the daemon stops cleanly (0) or cannot run (3: a configuration error, which restarting cannot fix). Any other
end of the daemon is a crash and leads to a restart. The daemon runs in a process group of its own, so a
terminal's Ctrl-C reaches it once, through the holder. The holder creates no file of its own; it imports
nothing of the daemon's (no event loop, no policy models), so it stays small.
"""

from __future__ import annotations

import array
import contextlib
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from hostpipe.core.exitcodes import Exit
from hostpipe.daemon.fifo import HELD_LOCK, HELD_PIPE
from hostpipe.daemon.locks import lock_state_dir
from hostpipe.daemon.paths import pid_file


def _log() -> Any:
    """structlog, imported only once the daemon has been started: the holder's start is on the path to ready."""
    import structlog  # noqa: PLC0415

    return structlog.get_logger("hostpipe.holder")


HOLDER_SOCKET = "HOSTPIPE_HOLDER_SOCKET"
"""The descriptor of the daemon's end of the socketpair to its holder."""

_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 30.0
_HEALTHY_RUN = 30.0
"""A daemon that ran this long before it died starts the back-off from the beginning again."""
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR2)
"""SIGUSR2 stops the daemon for an upgrade: detached containers keep running for the next daemon to adopt."""


def _describe(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def _remove_own_pid_file(state_dir: Path) -> None:
    """`serve --detach` wrote this holder's pid into the state folder: it goes when the holder does, so that no
    script signals whatever process gets the pid next. A pid file naming another process stays."""
    path = pid_file(state_dir)
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text().strip()) == os.getpid():
            path.unlink()


def hand_pipe_up(pipe_fd: int, environ: Mapping[str, str]) -> bool:
    """In the daemon: give the holder (when there is one) a descriptor of the FIFO to keep."""
    value = environ.get(HOLDER_SOCKET)
    if not value:
        return False
    with socket.socket(fileno=os.dup(int(value))) as sock:
        sock.sendmsg([b"pipe"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [pipe_fd]))])
    return True


def _receive_fd(sock: socket.socket) -> int | None:
    fds = array.array("i")
    try:
        _, ancillary, _, _ = sock.recvmsg(16, socket.CMSG_LEN(fds.itemsize))
    except (BlockingIOError, InterruptedError):
        return None
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return fds[0] if fds else None


class Holder:
    def __init__(
        self,
        *,
        state_dir: Path,
        daemon_argv: Sequence[str],
        environ: Mapping[str, str],
        on_started: Callable[[], object] | None = None,
    ) -> None:
        """`on_started`: called once, right after the first daemon's start (the holder's own log set-up)."""
        self._on_started = on_started
        self._state_dir = state_dir
        self._argv = list(daemon_argv)
        self._environ = dict(environ)
        self._daemon: subprocess.Popen[bytes] | None = None
        self._stop: signal.Signals | None = None
        self._pipe_fd: int | None = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        sig = signal.Signals(signum)
        if sig is not signal.SIGHUP:
            self._stop = sig
        if self._daemon is not None and self._daemon.poll() is None:
            os.kill(self._daemon.pid, sig)

    def run(self) -> int:
        self._state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_fd = lock_state_dir(self._state_dir)
        try:
            return self._serve(lock_fd)
        finally:
            _remove_own_pid_file(self._state_dir)

    def _serve(self, lock_fd: int) -> int:
        for sig in _FORWARDED:
            signal.signal(sig, self._on_signal)
        backoff = _BACKOFF_FIRST
        while True:
            started = time.monotonic()
            status = self._run_daemon(lock_fd)
            if self._stop is not None or status in (Exit.OK, Exit.CONFIG):
                return status if status >= 0 else Exit.OK
            if status > 0 and self._pipe_fd is None:
                # It never got as far as serving (another daemon has the pipe, the store is unusable): starting
                # it again would fail the same way. The daemon has said why on stderr.
                return status
            if time.monotonic() - started > _HEALTHY_RUN:
                backoff = _BACKOFF_FIRST
            _log().error(
                "daemon_died",
                status=_describe(status),
                restart_in=backoff,
                note="the pipe stays open; lines written meanwhile wait in it",
            )
            deadline = time.monotonic() + backoff
            while self._stop is None and (left := deadline - time.monotonic()) > 0:
                time.sleep(min(left, 0.1))
            if self._stop is not None:
                return Exit.OK
            backoff = min(backoff * 2, _BACKOFF_MAX)

    def _run_daemon(self, lock_fd: int) -> int:
        """Start the daemon, keep the pipe it hands up, and return its wait status when it ends."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**self._environ, HOLDER_SOCKET: str(theirs.fileno()), HELD_LOCK: str(lock_fd)}
        passed = [theirs.fileno(), lock_fd]
        if self._pipe_fd is not None:
            env[HELD_PIPE] = str(self._pipe_fd)
            passed.append(self._pipe_fd)
        try:
            self._daemon = subprocess.Popen(
                self._argv, env=env, pass_fds=passed, stdin=subprocess.DEVNULL, process_group=0
            )
        finally:
            theirs.close()
        if self._on_started is not None:
            started, self._on_started = self._on_started, None
            started()
        daemon = self._daemon
        if self._pipe_fd is not None:
            _log().info("daemon_restarted", pid=daemon.pid, holder=os.getpid())
        if self._stop is not None:
            # A stop signal came while the daemon was being started: pass it on now.
            os.kill(daemon.pid, self._stop)
        pidfd = os.pidfd_open(daemon.pid)
        try:
            watching = [ours.fileno(), pidfd]
            while daemon.poll() is None:
                readable, _, _ = select.select(watching, [], [])
                if ours.fileno() in readable:
                    fd = _receive_fd(ours)
                    if fd is None:
                        watching.remove(ours.fileno())
                    else:
                        if self._pipe_fd is not None:
                            os.close(self._pipe_fd)
                        self._pipe_fd = fd
            return daemon.wait()
        finally:
            os.close(pidfd)
            with contextlib.suppress(OSError):
                ours.close()
