"""The daemon under a service manager: readiness notification and a FIFO handed over already open."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Daemon, wait_for, write_line

UNIT = Path(__file__).parents[2] / "systemd" / "hostpipe.service"


def messages_until(sock: socket.socket, done, timeout: float = 15.0) -> list[str]:
    """Every notify message received until `done(messages)` holds; fails after `timeout` seconds."""
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while not done(messages):
        left = deadline - time.monotonic()
        assert left > 0, f"gave up waiting; received {messages}"
        sock.settimeout(left)
        messages.append(sock.recv(4096).decode())
    return messages


@pytest.fixture
def notify_socket(tmp_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify.sock"))
        yield sock


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


def test_status_line_counts_jobs_and_lines(make_daemon, notify_socket):
    """STATUS= says how many jobs run and wait and how many lines were recorded and refused."""
    daemon: Daemon = make_daemon(start=False)
    daemon.env["NOTIFY_SOCKET"] = notify_socket.getsockname()
    daemon.start()
    daemon.write("docker run test/x sleep 30\n")
    daemon.write("rm -rf /\n")
    wanted = "STATUS=1 running, 0 queued, 2 lines (1 refused)"
    messages_until(notify_socket, lambda got: wanted in "\n".join(got).splitlines())
    daemon.stop()


def test_reload_is_bracketed_by_reloading_and_ready(make_daemon, notify_socket):
    """A policy reload (SIGHUP) sends RELOADING=1 with MONOTONIC_USEC, then READY=1 once the policy is in force."""
    daemon: Daemon = make_daemon(start=False)
    daemon.env["NOTIFY_SOCKET"] = notify_socket.getsockname()
    daemon.start()
    messages_until(notify_socket, lambda got: any("READY=1" in m.splitlines() for m in got))
    os.kill(daemon.daemon_pid(), signal.SIGHUP)

    def reloaded(got: list[str]) -> bool:
        starts = [i for i, m in enumerate(got) if "RELOADING=1" in m.splitlines()]
        return bool(starts) and any("READY=1" in m.splitlines() for m in got[starts[0] + 1 :])

    messages = messages_until(notify_socket, reloaded)
    start = next(m for m in messages if "RELOADING=1" in m.splitlines())
    assert any(field.startswith("MONOTONIC_USEC=") and field[15:].isdigit() for field in start.splitlines())
    assert any(e["event"] == "policy_reloaded" for e in daemon.events())
    daemon.stop()
