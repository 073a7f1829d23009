"""Running a command with its stdout on a real pseudo-terminal, as an operator's shell does."""

from __future__ import annotations

import os
import pty
import subprocess
import sys


def on_terminal(args: list[str], env: dict[str, str], *, timeout: float = 60.0) -> tuple[int, bytes]:
    """Run `python -m hostpipe ARGS` with stdout on a pty; return its exit code and what the terminal got."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "hostpipe", *args],
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=subprocess.PIPE,
            env={**env, "COLUMNS": "200"},
        )
    finally:
        os.close(follower)
    received = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the command closed the terminal
            break
        if not chunk:
            break
        received += chunk
    os.close(leader)
    code = process.wait(timeout)
    return code, received
