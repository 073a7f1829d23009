"""kill -9 under load: with the pipe held by another process, no line is lost, recorded twice or run twice, and
no queued job is dropped.

Sixteen writers write unique lines as fast as they can while the daemon is killed with SIGKILL three times.
Every job appends its own id to a stamp file, so "ran" is what the host saw, not what a record claims. The pipe
is held either by the holder of a standalone `hostpipe serve` (which restarts its daemon) or by this test
playing systemd's socket unit (LISTEN_FDS), which starts a new daemon after each kill.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import Daemon, wait_for

WRITERS = 16
CRASHES = 3
POLICY = 'max_concurrent = 64\nkill_grace = "1s"\n[runtimes.docker]\n'


class Load:
    """Sixteen writers writing unique lines until told to stop; counts what each write delivered."""

    def __init__(self, pipe: Path, stamps: Path) -> None:
        self.pipe = pipe
        self.stamps = stamps
        self.stop = threading.Event()
        self.written: list[str] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._write, args=(w,)) for w in range(WRITERS)]

    def _write(self, writer: int) -> None:
        count = 0
        while not self.stop.is_set():
            client_id = f"w{writer}-{count}"
            line = f"HOSTPIPE_ID={client_id} docker run test/x sh -c 'echo {client_id} >> {self.stamps}'\n"
            fd = os.open(self.pipe, os.O_WRONLY)
            try:
                if os.write(fd, line.encode()) == len(line):
                    with self._lock:
                        self.written.append(client_id)
            finally:
                os.close(fd)
            count += 1
            time.sleep(0.02)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


class Activated:
    """This test as systemd's socket unit: it holds the FIFO and starts `hostpipe serve` with LISTEN_FDS."""

    def __init__(self, daemon: Daemon, fifo: Path) -> None:
        self.daemon = daemon
        self.fifo = fifo
        self.fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        readies = sum(1 for e in self.daemon.events() if e.get("event") == "ready")
        # As systemd does: the FIFO as fd 3, LISTEN_PID set to the service's own pid, then exec the service.
        launcher = (
            "import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_FDS'] = '1'; "
            "os.environ['LISTEN_PID'] = str(os.getpid()); os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
        )
        argv = [sys.executable, "-c", launcher, str(self.fd), "-m", "hostpipe", "serve", *self.daemon.args()]
        with Path(self.daemon.stderr_path or "").open("a") as err:
            self.process = subprocess.Popen(
                [*argv, "--log-format", "json"],
                env=self.daemon.env,
                stderr=err,
                pass_fds=(self.fd,),
                stdin=subprocess.DEVNULL,
            )
        wait_for(lambda: sum(1 for e in self.daemon.events() if e.get("event") == "ready") > readies, 60)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.start()

    def close(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        os.close(self.fd)
        return code


@pytest.mark.parametrize("mode", ["holder", "socket-activation"])
def test_kill_9_under_load_loses_nothing_when_the_pipe_is_held(mode, tmp_path, standin_env):
    """16 writers, 3 SIGKILLs: written == recorded, and 0 recorded twice, run twice or queued and never run."""
    stamps = tmp_path / "stamps"
    stamps.touch()
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    stderr = tmp_path / "serve.log"
    stderr.write_text("")
    daemon = Daemon(tmp_path / "hostpipe" / "vk-cmd", tmp_path / "state", policy, dict(standin_env), stderr_path=stderr)
    activated: Activated | None = None
    if mode == "holder":
        daemon.start()
    else:
        daemon.pipe.parent.mkdir()
        os.mkfifo(daemon.pipe, 0o600)
        activated = Activated(daemon, daemon.pipe)
        activated.start()
    with Load(daemon.pipe, stamps) as load:
        for _ in range(CRASHES):
            time.sleep(0.8)
            if activated is None:
                daemon.kill_daemon()
            else:
                activated.kill()
        time.sleep(0.5)
    written = set(load.written)

    def settled() -> list[dict[str, object]] | None:
        records = daemon.ps()
        ours = [r for r in records if r["client_id"] in written]
        if {str(r["client_id"]) for r in ours} < written or any(r["state"] in ("queued", "running") for r in ours):
            return None
        return ours

    records = wait_for(settled, timeout=180, interval=0.5)
    stopped = activated.close() if activated is not None else daemon.stop()
    assert stopped == 0

    ran = collections.Counter(stamps.read_text().split())
    per_id = collections.Counter(str(r["client_id"]) for r in records)
    report = {
        "mode": mode,
        "written": len(written),
        "recorded": len(per_id),
        "recorded twice": sum(1 for n in per_id.values() if n > 1),
        "run twice": sum(1 for n in ran.values() if n > 1),
        "queued, never run": sum(1 for r in records if str(r["client_id"]) not in ran),
        "states": dict(collections.Counter(str(r["state"]) for r in records)),
    }
    print(json.dumps(report))
    assert report["written"] > 500, report
    assert report["recorded"] == report["written"], report
    assert (report["recorded twice"], report["run twice"], report["queued, never run"]) == (0, 0, 0), report
