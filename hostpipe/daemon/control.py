"""The operator's channel to a running daemon: a unix socket in the private state folder.

Pods talk through the pipe; operators (`hostpipe cancel`) talk here. The socket lives in the state folder
(mode 0700) and the daemon also checks the peer's uid, so only the daemon's own user can stop jobs.
One JSON request per connection, one JSON reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from hostpipe.daemon.controlclient import ControlError, request

__all__ = ["ControlError", "Handler", "request", "serve_control"]

log = structlog.get_logger("hostpipe.control")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_MAX_REQUEST = 64 * 1024


def _peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


async def serve_control(path: Path, handler: Handler) -> asyncio.AbstractServer:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            path.unlink()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            if sock is None or _peer_uid(sock) != os.geteuid():
                reply: dict[str, Any] = {"ok": False, "error": "permission denied"}
            else:
                raw = await asyncio.wait_for(reader.readline(), timeout=5)
                try:
                    request = json.loads(raw[:_MAX_REQUEST])
                    if not isinstance(request, dict):
                        raise ValueError("a request is a JSON object")
                    reply = await handler(request)
                except ValueError as error:
                    reply = {"ok": False, "error": f"bad request: {error}"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (OSError, TimeoutError) as error:
            log.warning("control_connection_failed", error=str(error))
        finally:
            writer.close()

    old_umask = os.umask(0o177)
    try:
        return await asyncio.start_unix_server(on_connect, path=str(path))
    finally:
        os.umask(old_umask)
