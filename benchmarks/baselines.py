"""What hostpipe replaces and what it is measured against: the old shell loop, `xargs -P`, and
task-spooler (`tsp -S N`, Debian's task-spooler) when it is installed.

The old loop is the one vk-cmd hosts ran: a bash loop that `cat`s the pipe and `eval`s whatever came out, one
batch at a time. xargs is the yardstick for spawn rate: a small C program that does nothing but fork and exec.
task-spooler is a queue server
that pods' lines could be handed to, one `tsp CMD` client per job. All run the same stand-in runtime as
hostpipe, first on PATH. task-spooler is not a dependency: without `tsp` on PATH its figure is left out.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import processes


def path_with(bin_dir: Path) -> str:
    return os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])


class OldLoop:
    """`while true; do eval "$(cat PIPE)" > out 2> err; done`, on its own FIFO in `root`."""

    name = "old loop"

    def __init__(self, root: Path, bin_dir: Path):
        self.root = root
        self.pipe = root / "vk-cmd"
        self.bin_dir = bin_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.mkfifo(self.pipe)
        script = f'while true; do eval "$(cat {shlex.quote(str(self.pipe))})" > out 2> err; done'
        env = {**os.environ, "PATH": path_with(self.bin_dir)}
        self.process = processes.start(["bash", "-c", script], stdin=subprocess.DEVNULL, cwd=self.root, env=env)

    def stop(self) -> None:
        """The loop has no clean way to stop: kill it with everything it started."""
        if self.process is not None:
            processes.kill_group(self.process)


def run_xargs(bin_dir: Path, argv_lines: list[str], parallel: int, timeout: float) -> float:
    """Run `docker ARGS` for each line through `xargs -P parallel`; return the seconds until xargs exits."""
    env = {**os.environ, "PATH": path_with(bin_dir)}
    data = "".join(line + "\n" for line in argv_lines).encode()
    began = time.monotonic()
    process = processes.start(
        ["xargs", "-P", str(parallel), "-L", "1", "docker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    try:
        process.communicate(data, timeout=timeout)
    finally:
        processes.kill_group(process)
    if process.returncode != 0:
        raise RuntimeError(f"xargs exited with {process.returncode}")
    return time.monotonic() - began


def run_tsp(
    root: Path, bin_dir: Path, argv_lines: list[str], parallel: int, timeout: float, done: Callable[[], object]
) -> int | None:
    """Queue `docker ARGS` for each line with one `tsp -n` client each, on a private `tsp -S parallel` server.

    `done` waits until the jobs have ended (from their stamps). Returns the wall time (ns since the epoch) at
    which queueing began, to compare with the jobs' end stamps; None when task-spooler is not installed. The
    server is killed (`tsp -K`) once `done` returns, or on the way out of a failure.
    """
    tsp = shutil.which("tsp")
    if tsp is None:
        return None
    root.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PATH": path_with(bin_dir),
        "TS_SOCKET": str(root / "tsp.socket"),
        "TMPDIR": str(root),
        "TS_MAXFINISHED": str(len(argv_lines) + 16),
    }
    run = lambda *args: subprocess.run([tsp, *args], env=env, stdout=subprocess.DEVNULL, timeout=timeout, check=True)  # noqa: E731
    try:
        run("-S", str(parallel))
        began_ns = time.time_ns()
        for line in argv_lines:
            run("-n", "docker", *line.split())
        done()
    finally:
        subprocess.run([tsp, "-K"], env=env, capture_output=True, timeout=30, check=False)
    return began_ns
