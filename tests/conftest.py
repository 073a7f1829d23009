"""Shared fixtures: a real `hostpipe serve` process on a real FIFO, with stand-in runtimes on its PATH."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

STANDINS = Path(__file__).parent / "standins"
DATA = Path(__file__).parent / "data"


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until `predicate` returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def write_line(pipe: Path, line: str | bytes) -> None:
    """What a pod's `echo LINE > pipe` does: open, one write, close."""
    data = line if isinstance(line, bytes) else line.encode()
    fd = os.open(pipe, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def hostpipe(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hostpipe", *args],
        capture_output=True,
        text=True,
        env=env,
        check=check,
        timeout=60,
    )


@dataclass
class Daemon:
    pipe: Path
    state_dir: Path
    policy: Path
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None
    stderr_path: Path | None = None
    extra_args: list[str] = field(default_factory=list)

    def args(self) -> list[str]:
        return ["--pipe", str(self.pipe), "--state-dir", str(self.state_dir), "--policy", str(self.policy)]

    def start(self, *extra: str, timeout: float = 10.0) -> Daemon:
        assert self.stderr_path is not None
        self.stderr_path.write_text("")
        err = self.stderr_path.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hostpipe", "serve", *self.args(), "--log-format", "json", *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=self.env,
            text=True,
        )
        err.close()
        wait_for(lambda: self.ready() or self.process.poll() is not None, timeout)  # type: ignore[union-attr]
        if self.process.poll() is not None:
            raise AssertionError(f"hostpipe serve exited {self.process.returncode}: {self.stderr_path.read_text()}")
        return self

    def ready(self) -> bool:
        return any(e.get("event") == "ready" for e in self.events())

    def daemon_pid(self) -> int:
        """The pid of the daemon itself (the holder's child), from its latest `ready` event."""
        return int([e for e in self.events() if e.get("event") == "ready"][-1]["pid"])

    def kill_daemon(self, timeout: float = 60.0) -> int:
        """SIGKILL the daemon (not its holder) and wait until the holder has started a new one that is ready."""
        readies = sum(1 for e in self.events() if e.get("event") == "ready")
        pid = self.daemon_pid()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: sum(1 for e in self.events() if e.get("event") == "ready") > readies, timeout)
        return pid

    def events(self) -> list[dict[str, Any]]:
        assert self.stderr_path is not None
        out = []
        for line in self.stderr_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def write(self, line: str | bytes) -> None:
        write_line(self.pipe, line)

    def ps(self, *args: str) -> list[dict[str, Any]]:
        result = hostpipe("ps", "--json", *self.args(), *args, env=self.env)
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        command, *rest = args
        return hostpipe(command, *self.args(), *rest, env=self.env, check=check)

    def wait_records(self, count: int, *, terminal: bool = True, timeout: float = 20.0) -> list[dict[str, Any]]:
        live = {"queued", "running"}

        def done() -> list[dict[str, Any]] | None:
            records = self.ps()
            if len(records) < count:
                return None
            if terminal and any(r["state"] in live for r in records):
                return None
            return records

        return wait_for(done, timeout, interval=0.1)  # type: ignore[no-any-return]

    def kill_all(self) -> None:
        """SIGKILL the holder and every daemon it started: nothing of a test outlives it."""
        pids = {int(e["pid"]) for e in self.events() if e.get("event") in ("ready", "daemon_started")}
        if self.process is not None:
            pids.add(self.process.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


DEFAULT_POLICY = """
max_concurrent = 64
kill_grace = "1s"

[runtimes.docker]
[runtimes.podman]
[runtimes.apptainer]
[runtimes.shifter]
"""


@pytest.fixture
def standin_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{STANDINS}:{os.environ['PATH']}",
        "HOME": str(home),
        "USER": os.environ.get("USER", "root"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(Path(__file__).parent.parent)])),
    }
    return env


@pytest.fixture
def make_daemon(tmp_path: Path, standin_env: dict[str, str]) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def make(policy: str = DEFAULT_POLICY, *extra: str, start: bool = True) -> Daemon:
        policy_path = tmp_path / "policy.toml"
        policy_path.write_text(textwrap.dedent(policy))
        daemon = Daemon(
            pipe=tmp_path / "hostpipe" / "vk-cmd",
            state_dir=tmp_path / "state",
            policy=policy_path,
            env=dict(standin_env),
            stderr_path=tmp_path / "serve.log",
        )
        started.append(daemon)
        return daemon.start(*extra) if start else daemon

    yield make
    for daemon in started:
        daemon.kill_all()


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
