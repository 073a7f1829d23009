"""Shared fixtures: a real `hostpipe serve` process on a real FIFO, with stand-in runtimes on its PATH."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# prometheus_client is loaded before any test module can load hostpipe.cli.main, which marks ssl absent as every
# hostpipe process does (a daemon asked for metrics lifts the mark; tests/daemon/test_metrics.py parses what it
# serves with prometheus_client's own parser, which imports ssl, and urllib.request must see ssl too).
import prometheus_client.parser  # noqa: F401
import pytest

STANDINS = Path(__file__).parent / "standins"
DATA = Path(__file__).parent / "data"
RUN_ROOT = Path(__file__).parent / ".run"
"""Where `daemon_root` makes its folders: inside the checkout, outside every folder a runtime binds."""
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""A PATH without the test runner's own folders (~/.local/bin and the like), which a daemon whose jobs can
write the home folder must not search."""


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
        try:
            text = self.stderr_path.read_text()
        except FileNotFoundError:
            return []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def write(self, line: str | bytes) -> None:
        write_line(self.pipe, line)

    def ps(self, *args: str) -> list[dict[str, Any]]:
        result = hostpipe("ps", "--json", "--all", *self.args(), *args, env=self.env)
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
        pids = {int(e["pid"]) for e in self.events() if e.get("event") in ("ready", "daemon_restarted")}
        if self.process is not None:
            pids.add(self.process.pid)
            with contextlib.suppress(OSError):
                holder = self.process.pid
                pids.update(int(p) for p in Path(f"/proc/{holder}/task/{holder}/children").read_text().split())
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
"""
"""docker and podman, whose jobs write no host folder by default. apptainer and shifter jobs can write /tmp,
where tmp_path puts the daemon's policy and state, so a daemon naming them refuses to start there: tests of
those runtimes pass `root=daemon_root`."""


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
def daemon_root() -> Iterator[Path]:
    """A folder for a daemon's HOME, policy, state and pipe that no runtime binds into its jobs.

    tmp_path lies under /tmp, which apptainer and shifter bind read-write into every job, and the daemon
    refuses a policy, state folder or client configuration its jobs could write. This folder is inside the
    checkout instead, with a short name (the control socket's path must stay under 108 bytes).
    """
    RUN_ROOT.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="hp", dir=RUN_ROOT))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def rooted_env(standin_env: dict[str, str], root: Path) -> dict[str, str]:
    """The stand-in environment with HOME under `root` and a PATH of system folders and the stand-ins."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {**standin_env, "HOME": str(home), "PATH": f"{STANDINS}:{SYSTEM_PATH}"}


@pytest.fixture
def make_daemon(tmp_path: Path, standin_env: dict[str, str]) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def make(policy: str = DEFAULT_POLICY, *extra: str, start: bool = True, root: Path | None = None) -> Daemon:
        """A daemon whose files lie in tmp_path, or under `root` (HOME too, and a PATH without the runner's)."""
        folder = tmp_path if root is None else root
        folder.mkdir(parents=True, exist_ok=True)
        policy_path = folder / "policy.toml"
        policy_path.write_text(textwrap.dedent(policy))
        daemon = Daemon(
            pipe=folder / "hostpipe" / "vk-cmd",
            state_dir=folder / "state",
            policy=policy_path,
            env=dict(standin_env) if root is None else rooted_env(standin_env, root),
            stderr_path=folder / "serve.log",
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
