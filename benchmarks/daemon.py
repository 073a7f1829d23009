"""hostpipe as a reader under test: start `hostpipe serve` on a temporary pipe, see it get ready, stop it.

Each case gets a fresh daemon with its own pipe, state folder, policy and stand-in runtime, so cases do not
disturb one another and every start is another sample of the start-up time. Start-up is timed twice: until the
daemon logs its "ready" event, and until the FIFO can be opened for writing with a reader on the other end
(what a pod's `echo` needs).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import processes

from hostpipe.daemon.controlclient import ControlError, request


class HarnessError(RuntimeError):
    """The harness could not measure (as opposed to a figure missing its target)."""


def hostpipe_command(repo: Path) -> list[str]:
    """The argv prefix that runs hostpipe's CLI from this checkout, checked with `serve --help`.

    The module form runs the code in `repo`; the console script is the fallback for an installed copy.
    """
    candidates = [[sys.executable, "-c", "from hostpipe.cli.main import main; main()"]]
    if console := shutil.which("hostpipe"):
        candidates.append([console])
    tried = []
    for command in candidates:
        try:
            done = subprocess.run(
                [*command, "serve", "--help"], env=cli_env(repo), capture_output=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            tried.append(f"{command}: {error}")
            continue
        if done.returncode == 0:
            return command
        tried.append(f"{command}: exit {done.returncode}: {done.stderr.decode(errors='replace')[-300:]}")
    raise HarnessError("no working `hostpipe serve --help`:\n" + "\n".join(tried))


def cli_env(repo: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The harness's environment with `repo` importable, hostpipe's own variables removed, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPIPE_") and k != "NOTIFY_SOCKET"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def policy_text(max_concurrent: int, kill_grace: str = "2s") -> str:
    """A policy allowing `docker run bench/*` only, with the given concurrency.

    The rate limit on refused lines is lifted so that every refused line gets a record of its own: case 5
    measures the most a refused line can cost (with the limit, most of a flood is only counted).
    """
    return (
        f"max_concurrent = {max_concurrent}\n"
        "max_queued = 200000\n"
        "refused_per_pod = 1000000\n"
        "refused_overall = 1000000\n"
        f'kill_grace = "{kill_grace}"\n'
        "\n[runtimes.docker]\n"
        'subcommands = ["run"]\n'
        'images = ["bench/*"]\n'
    )


class Hostpipe:
    """One `hostpipe serve` process in `root`, with the stand-in runtime in `bin_dir` first on its PATH."""

    name = "hostpipe"

    def __init__(self, command: list[str], repo: Path, root: Path, bin_dir: Path, max_concurrent: int):
        self.command = command
        self.repo = repo
        self.root = root
        self.pipe = root / "vk-cmd"
        self.state_dir = root / "state"
        # A folder of its own, as ~/.config/hostpipe is: the daemon watches the policy's folder for edits, and
        # the log and stamp files written next to it would keep waking the watcher.
        self.policy = root / "config" / "policy.toml"
        self.log = root / "hostpipe.log"
        self.home = root / "home"
        self.bin_dir = bin_dir
        self.max_concurrent = max_concurrent
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_s: float | None = None
        self.writable_s: float | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def env(self) -> dict[str, str]:
        path = os.pathsep.join([str(self.bin_dir), os.environ.get("PATH", "")])
        return cli_env(self.repo, {"PATH": path, "HOME": str(self.home)})

    def start(self, timeout: float = 20.0) -> None:
        """Start the daemon and wait until it is ready and its FIFO is writable."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.policy.parent.mkdir(parents=True, exist_ok=True)
        self.policy.write_text(policy_text(self.max_concurrent))
        argv = [
            *self.command,
            "serve",
            "--pipe",
            str(self.pipe),
            "--state-dir",
            str(self.state_dir),
            "--policy",
            str(self.policy),
            "--log-format",
            "json",
        ]
        with self.log.open("wb") as log:
            began = time.monotonic()
            self.process = processes.start(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env(), cwd=self.root
            )
        self._wait_ready(began, timeout)

    def _wait_ready(self, began: float, timeout: float) -> None:
        assert self.process is not None
        while self.ready_s is None or self.writable_s is None:
            elapsed = time.monotonic() - began
            if self.process.poll() is not None:
                code = self.process.returncode
                raise HarnessError(f"hostpipe serve exited with {code}:\n{self.log_tail()}")
            if elapsed > timeout:
                raise HarnessError(f"hostpipe serve not ready after {timeout} s:\n{self.log_tail()}")
            if self.writable_s is None and _fifo_writable(self.pipe):
                self.writable_s = elapsed
            if self.ready_s is None and any(e.get("event") == "ready" for e in self.events()):
                self.ready_s = elapsed
            time.sleep(0.001)

    def events(self) -> list[dict[str, Any]]:
        """The daemon's JSON log lines so far (lines that are not JSON objects are skipped)."""
        events = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)
        return events

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 30.0) -> dict[str, Any]:
        """SIGTERM the daemon, as a service manager would; SIGKILL its group if still there after `grace`."""
        if self.process is None:
            return {}
        began = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            code = None
        stop_s = time.monotonic() - began
        processes.kill_group(self.process)
        return {"exit_code": code, "stop_s": stop_s, "forced": code is None}

    def control(self, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """One request on the daemon's control socket (state folder's control.sock), its JSON reply."""
        try:
            reply = request(self.state_dir / "control.sock", payload, timeout=timeout)
        except (ControlError, OSError) as error:
            raise HarnessError(f"control request {payload} failed: {error}") from error
        if not reply.get("ok"):
            raise HarnessError(f"control request {payload} failed: {reply}")
        return reply

    def pids(self) -> list[int]:
        """The holder (`hostpipe serve`), the daemon it runs and the daemon's store writer: hostpipe's processes."""
        status = self.control({"op": "status"})
        pids = [self.pid, int(status["pid"])]
        if status.get("writer_pid"):
            pids.append(int(status["writer_pid"]))
        return list(dict.fromkeys(pids))

    def ps(self, state: str | None = None, timeout: float = 120.0) -> list[dict[str, Any]]:
        """`hostpipe ps --json` for this daemon's state folder."""
        argv = [*self.command, "ps", "--json", "--all"] + (["--state", state] if state else [])
        extra = {
            "HOSTPIPE_STATE_DIR": str(self.state_dir),
            "HOSTPIPE_PIPE": str(self.pipe),
            "HOSTPIPE_POLICY": str(self.policy),
        }
        done = subprocess.run(argv, env={**self.env(), **extra}, capture_output=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise HarnessError(f"hostpipe ps failed ({done.returncode}): {done.stderr.decode()[-500:]}")
        records = json.loads(done.stdout)
        if not isinstance(records, list):
            raise HarnessError("hostpipe ps --json did not print a JSON array")
        return records


def _fifo_writable(pipe: Path) -> bool:
    # O_NONBLOCK makes open() fail with ENXIO instead of waiting while no reader holds the FIFO.
    try:
        fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False
    os.close(fd)
    return True
