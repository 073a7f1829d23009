"""The daemon under a service manager: notify messages (ready, status, reload) and a FIFO handed over open."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from hostpipe.daemon.status import ServiceStatus
from tests.conftest import Daemon, wait_for, write_line


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
    wait_for(lambda: any(e["event"] == "policy_reloaded" for e in daemon.events()))
    daemon.stop()


def _activated(daemon: Daemon, held: int, log_name: str) -> subprocess.Popen[str]:
    """Start a daemon as systemd does under socket activation: the FIFO it holds becomes fd 3, LISTEN_PID is
    the daemon's own pid (bash: dash takes single-digit descriptors only)."""
    launcher = (
        f'exec 3<&{held}; LISTEN_FDS=1 LISTEN_PID=$$ exec "{sys.executable}" -m hostpipe serve '
        + " ".join(f'"{a}"' for a in daemon.args())
        + " --log-format json"
    )
    err = (daemon.pipe.parent / log_name).open("w")
    try:
        return subprocess.Popen(["bash", "-c", launcher], env=daemon.env, stderr=err, pass_fds=[held], text=True)
    finally:
        err.close()


def test_activated_daemon_leaves_unread_lines_in_the_pipe_for_the_next_start(make_daemon):
    """Under socket activation, lines written while the daemon stops stay in the pipe the manager holds and
    are recorded and run by the next start, not refused as `shutting-down`."""
    daemon: Daemon = make_daemon('max_concurrent = 4\nkill_grace = "3s"\n[runtimes.docker]\n', start=False)
    daemon.pipe.parent.mkdir(parents=True)
    os.mkfifo(daemon.pipe, 0o600)
    # The test is the service manager here: it holds the FIFO open across both daemons, as ListenFIFO= does.
    held = os.open(daemon.pipe, os.O_RDWR | os.O_NONBLOCK)
    first = second = None
    try:
        daemon.stderr_path = daemon.pipe.parent / "first.log"
        first = _activated(daemon, held, "first.log")
        wait_for(daemon.ready)
        # A job that ignores SIGTERM keeps the first daemon stopping for kill_grace: long enough to write into
        # the pipe after it has stopped reading it.
        daemon.write("""docker run test/x sh -c 'trap "" TERM; sleep 60'\n""")
        wait_for(lambda: any(r["state"] == "running" for r in daemon.ps()))
        first.send_signal(signal.SIGTERM)
        wait_for(lambda: any(e["event"] == "stopping" for e in daemon.events()))
        for n in range(3):
            daemon.write(f"docker run test/x echo late-{n}\n")
        assert first.wait(30) == 0
        assert [r["state"] for r in daemon.ps()] == ["cancelled"]

        daemon.stderr_path = daemon.pipe.parent / "second.log"
        second = _activated(daemon, held, "second.log")
        wait_for(daemon.ready)
        records = daemon.wait_records(4)
        assert [r["state"] for r in records[1:]] == ["succeeded"] * 3
        assert sorted(r["line"] for r in records[1:]) == [f"docker run test/x echo late-{n}" for n in range(3)]
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
        os.close(held)


def test_status_is_sent_only_when_the_summary_changes():
    """The tick sends STATUS= once per change (a flood costs one datagram a second), with the store's trouble."""
    sent: list[str] = []
    running, problem = [0], [None]
    status = ServiceStatus(
        running=lambda: running[0], queued=lambda: 1, store_problem=lambda: problem[0], notify=sent.append
    )
    status.tick(0.0)
    status.tick(1.0)
    running[0] = 2
    status.tick(2.0)
    problem[0] = "disk full"
    status.tick(3.0)
    assert sent == [
        "STATUS=0 running, 1 queued, 0 lines (0 refused)",
        "STATUS=2 running, 1 queued, 0 lines (0 refused)",
        "STATUS=2 running, 1 queued, 0 lines (0 refused); store degraded: disk full",
    ]
