"""`hostpipe serve --detach`: start the daemon in the background and return once it serves the pipe, or say why not.

What a script's `nohup hostpipe serve >> LOG 2>&1 &` could not do: create the state folder (and its parents,
such as ~/.local/state on a fresh account) before it opens its log there, refuse at once when another daemon
holds the state folder (naming its pid), and tell the caller when the pipe is ready, so that no pod writes a
line before there is a FIFO to take it. Readiness is the control socket's answer: the daemon answers only once
its start-up is complete (the pipe open and read). A start that fails ends with the daemon's own one-line
reason, taken from its log, and its exit code (3 for a configuration error).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hostpipe.core.exitcodes import Exit
from hostpipe.daemon.controlclient import ControlError, request
from hostpipe.daemon.liveness import lock_holder
from hostpipe.daemon.paths import control_socket, pid_file

LOG_NAME = "serve.log"
_POLL = 0.05


@dataclass(frozen=True)
class Detached:
    code: int
    message: str
    pid: int | None = None


def _write_pid(path: Path, pid: int) -> None:
    """The pid file appears whole: written beside it, then renamed over it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, f"{pid}\n".encode())
    finally:
        os.close(fd)
    os.replace(temporary, path)


def failure_reason(log_text: str) -> str | None:
    """The daemon's own one-line reason from what it logged: its `hostpipe: ...` error line, or else the last
    error event of its JSON log."""
    reason = None
    for line in log_text.splitlines():
        if line.startswith("hostpipe: "):
            reason = line.removeprefix("hostpipe: ").strip()
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("level") in ("error", "critical"):
            details = ", ".join(f"{k}={v}" for k, v in event.items() if k not in ("event", "level", "timestamp"))
            reason = f"{event.get('event')}: {details}" if details else str(event.get("event"))
    return reason


def detach(serve_argv: Sequence[str], *, state_dir: Path, environ: Mapping[str, str], ready_timeout: float) -> Detached:
    """Start `serve_argv` (a foreground `hostpipe serve`) in its own session, logging to the state folder, and
    wait until it answers on the control socket or ends."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    holder = lock_holder(state_dir)
    if holder is not None:
        who = f"pid {holder.pid}" if holder.pid else "another process"
        return Detached(
            Exit.UNAVAILABLE,
            f"a hostpipe serve ({who}) already serves {state_dir}; stop it first, or give another --state-dir",
            holder.pid,
        )
    log_path = state_dir / LOG_NAME
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    start = os.fstat(log_fd).st_size
    try:
        process = subprocess.Popen(
            list(serve_argv),
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            env=dict(environ),
            start_new_session=True,
        )
    finally:
        os.close(log_fd)
    _write_pid(pid_file(state_dir), process.pid)
    deadline = time.monotonic() + ready_timeout
    socket_path = control_socket(state_dir)
    while True:
        code = process.poll()
        if code is not None:
            with contextlib.suppress(FileNotFoundError):
                (pid_file(state_dir)).unlink()
            reason = failure_reason(_read_from(log_path, start)) or f"it exited {code} without saying why"
            return Detached(code or Exit.UNAVAILABLE, f"hostpipe serve did not start: {reason} (log: {log_path})")
        try:
            reply = request(socket_path, {"op": "status"}, timeout=max(0.1, deadline - time.monotonic()))
        except (ControlError, OSError):
            reply = {}
        if reply.get("ok") and reply.get("pid") is not None:
            return Detached(
                Exit.OK,
                f"hostpipe serve (pid {process.pid}) is serving {reply.get('pipe', 'the pipe')}; "
                f"log: {log_path}, pid file: {pid_file(state_dir)}",
                process.pid,
            )
        if time.monotonic() >= deadline:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
            return Detached(
                Exit.UNAVAILABLE,
                f"hostpipe serve was not ready within {ready_timeout:g}s and was stopped (log: {log_path})",
            )
        time.sleep(_POLL)


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            return log.read(1 << 20).decode(errors="replace")
    except OSError:
        return ""
