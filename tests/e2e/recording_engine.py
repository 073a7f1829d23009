"""A fake Docker engine that records what the real docker CLI asks it to create, and creates nothing.

The docker CLI rewrites much of an argv before any engine sees it: it lower-cases fields of `--network` and
`--mount`, reads CSV, fills in defaults and reads files of the host. What reaches the engine is the JSON body
of `POST /containers/create`. This server answers the CLI's `GET /_ping` and `/version` on a unix socket, keeps
the body of every create request, and answers it with an error, so the CLI stops there and nothing runs.
"""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

API_VERSION = "1.47"
REFUSAL = "hostpipe recording engine: recorded, not created"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Ostype", "linux")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if self.path.endswith("/_ping"):
            self._reply(200, "OK")
        elif self.path.endswith("/version"):
            self._reply(
                200,
                {
                    "ApiVersion": API_VERSION,
                    "MinAPIVersion": "1.24",
                    "Version": "27.0.0",
                    "Os": "linux",
                    "Arch": "amd64",
                },
            )
        else:
            self._reply(404, {"message": f"the recording engine does not serve {self.path}"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "/containers/create" in self.path:
            self.server.created.append(json.loads(body))
            self._reply(500, {"message": REFUSAL})
        else:
            self._reply(404, {"message": f"the recording engine does not serve {self.path}"})

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads the recorded bodies, not an access log."""


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    created: list[dict[str, Any]]

    def get_request(self) -> tuple[Any, Any]:
        conn, _ = super().get_request()
        # BaseHTTPRequestHandler wants an address it can print; a unix socket has none.
        return conn, ("recording-engine", 0)


@dataclass
class RecordingEngine:
    """The server on `socket`, and a docker CLI pointed at it with an empty configuration of its own."""

    socket: Path
    config: Path
    _server: _Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> None:
        self.config.mkdir(parents=True, exist_ok=True)
        self._server = _Server(str(self.socket), _Handler)
        self._server.created = []
        self._thread = threading.Thread(target=self._server.serve_forever, name="recording-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
        self.socket.unlink(missing_ok=True)

    def create(self, args: Sequence[str], cwd: Path | None = None) -> tuple[dict[str, Any] | None, str]:
        """`docker ARGS` against this engine: the create body it sent (None if it sent none) and its output."""
        assert self._server is not None, "start the engine first"
        before = len(self._server.created)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.config),
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_CONFIG": str(self.config),
        }
        result = subprocess.run(
            ["docker", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
        )
        created = self._server.created[before:]
        assert len(created) <= 1, created
        return (created[0] if created else None), result.stdout + result.stderr
