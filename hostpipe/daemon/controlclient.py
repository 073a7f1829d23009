"""The client end of the control socket (`hostpipe.daemon.control`), for the CLI.

Apart from the server so that a command which only asks the daemon something imports no event loop.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any


class ControlError(Exception):
    pass


def request(path: Path, payload: dict[str, Any], *, timeout: float = 30.0) -> dict[str, Any]:
    """Send one request to the daemon listening at `path` and return its reply (used by the CLI)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as error:
            raise ControlError(f"no daemon is listening at {path} (is `hostpipe serve` running?)") from error
        sock.sendall(json.dumps(payload).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    try:
        reply = json.loads(data)
    except ValueError as error:
        raise ControlError(f"the daemon sent an unreadable reply: {data[:200]!r}") from error
    if not isinstance(reply, dict):
        raise ControlError("the daemon sent an unreadable reply")
    return reply
