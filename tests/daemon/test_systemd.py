"""The daemon under a service manager: readiness notification and a FIFO handed over already open."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Daemon, wait_for, write_line

UNIT = Path(__file__).parents[2] / "systemd" / "hostpipe.service"


def test_sends_ready_to_notify_socket(make_daemon, tmp_path):
    """Under Type=notify, READY=1 arrives on NOTIFY_SOCKET once the pipe is being read."""
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(10)
        daemon: Daemon = make_daemon(start=False)
        daemon.env["NOTIFY_SOCKET"] = address
        daemon.start()
        message = sock.recv(4096).decode()
        assert "READY=1" in message.splitlines()
        daemon.stop()
        assert "STOPPING=1" in sock.recv(4096).decode().splitlines()


def test_serves_a_fifo_passed_by_the_service_manager(make_daemon, tmp_path):
    """With LISTEN_FDS (ListenFIFO=), the daemon reads the open FIFO it was given and creates nothing itself."""
    daemon: Daemon = make_daemon(start=False)
    fifo = tmp_path / "activated.fifo"
    os.mkfifo(fifo, 0o600)
    daemon.pipe = tmp_path / "never-created" / "vk-cmd"
    # As systemd does: open the FIFO read-write as fd 3, set LISTEN_PID to the service's own pid, exec it.
    launcher = (
        f'exec 3<>"{fifo}"; LISTEN_FDS=1 LISTEN_PID=$$ exec "{sys.executable}" -m hostpipe serve '
        + " ".join(f'"{a}"' for a in daemon.args())
        + " --log-format json"
    )
    err = (tmp_path / "serve.log").open("w")
    daemon.process = subprocess.Popen(["sh", "-c", launcher], env=daemon.env, stderr=err, text=True)
    err.close()
    wait_for(daemon.ready)
    ready = next(e for e in daemon.events() if e["event"] == "ready")
    assert ready["inherited"] is True
    assert not daemon.pipe.parent.exists()
    for _ in range(3):
        # Each writer closes its end; the daemon never sees end-of-file and keeps reading.
        write_line(fifo, "docker run test/x\n")
    assert [r["state"] for r in daemon.wait_records(3)] == ["succeeded"] * 3
    assert daemon.stop() == 0


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_user_unit_passes_systemd_analyze_verify(tmp_path):
    """The shipped unit file is one systemd accepts (ExecStart pointed at this installation's hostpipe)."""
    executable = shutil.which("hostpipe")
    if executable is None:
        pytest.skip("the hostpipe console script is not installed")
    unit = tmp_path / "hostpipe.service"
    unit.write_text(UNIT.read_text().replace("%h/.local/bin/hostpipe", executable))
    runtime_dir = tmp_path / "run"
    runtime_dir.mkdir(mode=0o700)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir)},
        timeout=60,
        check=False,
    )
    problems = [line for line in result.stderr.splitlines() if "hostpipe.service" in line]
    assert result.returncode == 0 and not problems, result.stderr
