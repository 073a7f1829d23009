"""What the submit tests share: the clients, a daemon in a folder of its own, and waits on records and output."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import DEFAULT_POLICY, STANDINS, Daemon, wait_for

CLIENTS = ["python", "dash", "busybox"]
SHELLS = {"dash": ["dash"], "busybox": ["busybox", "sh"]}


def published(daemon: Daemon) -> Path:
    return daemon.pipe.parent / "bin" / "hostpipe-submit"


def replies(daemon: Daemon) -> Path:
    return daemon.pipe.parent / "replies"


@dataclass
class Client:
    """One kind of client pointed at one daemon: argv, a run to its end, or a process to watch."""

    kind: str
    daemon: Daemon

    def argv(self, *args: str) -> list[str]:
        if self.kind == "python":
            return [sys.executable, "-m", "hostpipe", "submit", "--pipe", str(self.daemon.pipe), *args]
        # The sh client finds the pipe from its own path, as a pod that runs it by that path does.
        return [*SHELLS[self.kind], str(published(self.daemon)), *args]

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in self.daemon.env.items() if not k.startswith("POD_")}
        return {**env, **(extra or {})}

    def run(
        self, *args: str, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            env=self.env(env),
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        # A pod's shell starts with every signal at its default. A test run started under nohup, or in the
        # background of a shell without job control, would hand its ignored SIGHUP or SIGINT on, and a shell
        # cannot trap a signal that was ignored when it started.
        return subprocess.Popen(
            ["env", "--default-signal=HUP,INT", *self.argv(*args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env(env),
        )


def start_daemon(folder: Path, env: dict[str, str], policy: str = DEFAULT_POLICY, *extra: str) -> Daemon:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "home").mkdir(exist_ok=True)
    policy_path = folder / "policy.toml"
    policy_path.write_text(textwrap.dedent(policy))
    daemon = Daemon(
        pipe=folder / "hostpipe" / "vk-cmd",
        state_dir=folder / "state",
        policy=policy_path,
        env={**env, "HOME": str(folder / "home")},
        stderr_path=folder / "serve.log",
    )
    daemon.start(*extra)
    wait_for(lambda: published(daemon).exists(), 10)
    return daemon


def client_env() -> dict[str, str]:
    return {
        "PATH": f"{STANDINS}:{os.environ['PATH']}",
        "USER": os.environ.get("USER", "root"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [os.environ.get("PYTHONPATH"), str(Path(__file__).parent.parent.parent)])
        ),
    }


def record_of(daemon: Daemon, job_id: int) -> dict[str, Any]:
    return next(r for r in daemon.ps() if r["id"] == job_id)


def records_with(daemon: Daemon, text: str) -> list[dict[str, Any]]:
    """The records whose line holds `text` (a marker each test puts in its command)."""
    return [r for r in daemon.ps() if text in r["line"]]


def wait_state(daemon: Daemon, marker: str, states: set[str], timeout: float = 20) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        found = [r for r in records_with(daemon, marker) if r["state"] in states]
        return found[0] if found else None

    return wait_for(reached, timeout, interval=0.1)  # type: ignore[no-any-return]


def read_until(process: subprocess.Popen[str], line: str, timeout: float) -> str:
    """Read the client's stdout (below its buffers) until a line equal to `line` has come; the client keeps
    running. Returns what was read."""
    fd = process.stdout.fileno()  # type: ignore[union-attr]
    seen = b""
    deadline = time.monotonic() + timeout
    while f"\n{line}\n".encode() not in b"\n" + seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no line {line!r} from the client within {timeout}s; it printed {seen!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"the client ended before printing {line!r}; it printed {seen!r}")
            seen += chunk
    return seen.decode()


def terminate(process: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, str, str]:
    process.send_signal(sig)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def control(daemon: Daemon, op: str, key: str) -> None:
    """A control line as any pod can write it."""
    daemon.write(json.dumps({"op": op, "reply": key}) + "\n")
