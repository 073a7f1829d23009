"""`hostpipe serve --detach`: returns once the pipe is ready, or with the reason it is not; one daemon per folder."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import textwrap
from pathlib import Path

import pytest

from hostpipe.daemon.liveness import lock_holder
from tests.conftest import DEFAULT_POLICY, hostpipe, wait_for, write_line


@pytest.fixture
def fresh(tmp_path: Path, standin_env: dict[str, str]):
    """A fresh account's layout: no ~/.local/state yet; the daemon started by a test is stopped after it."""
    home = Path(standin_env["HOME"])
    policy = tmp_path / "policy.toml"
    policy.write_text(textwrap.dedent(DEFAULT_POLICY))
    state = home / ".local" / "state" / "hostpipe"
    pipe = home / "hostpipe" / "vk-cmd"
    args = ["--pipe", str(pipe), "--state-dir", str(state), "--policy", str(policy)]
    yield standin_env, args, state, pipe, policy
    pid_file = state / "serve.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        wait_for(lambda: lock_holder(state) is None, timeout=30)


def test_detach_returns_when_the_pipe_is_ready(fresh):
    """On a fresh account it makes the state folder, returns 0 with the pipe already a FIFO, writes its log and
    pid file, and a line written at once is run."""
    env, args, state, pipe, _ = fresh
    assert not state.parent.exists()
    result = hostpipe("serve", "--detach", *args, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    pid = int((state / "serve.pid").read_text())
    assert f"pid {pid}" in result.stdout and (state / "serve.log").exists()
    holder = lock_holder(state)
    assert holder is not None and holder.pid == pid
    write_line(pipe, "docker run test/x true\n")
    wait_for(lambda: "1 succeeded" in hostpipe("status", *args, env=env, check=False).stdout, timeout=20)


def test_a_second_detach_is_refused_with_the_pid_that_holds_the_pipe(fresh):
    """While one daemon serves the folder, another --detach exits 4 at once and names the first one's pid."""
    env, args, state, _, _ = fresh
    assert hostpipe("serve", "--detach", *args, env=env, check=False).returncode == 0
    pid = int((state / "serve.pid").read_text())
    second = hostpipe("serve", "--detach", *args, env=env, check=False)
    assert second.returncode == 4 and f"pid {pid}" in second.stderr and second.stderr.count("\n") == 1
    assert int((state / "serve.pid").read_text()) == pid


def test_detach_with_a_broken_policy_exits_3_with_the_reason(fresh):
    """A policy with a wrong type: exit 3 (configuration), one line naming the field, no daemon left behind."""
    env, args, state, _, policy = fresh
    policy.write_text('max_concurrent = "4"\n[runtimes.docker]\n')
    result = hostpipe("serve", "--detach", *args, env=env, check=False)
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "max_concurrent" in result.stderr and "serve.log" in result.stderr
    assert lock_holder(state) is None and not (state / "serve.pid").exists()


def test_the_pid_file_goes_when_the_detached_daemon_stops(fresh):
    """A stale pid file would have a script signal whatever process gets the pid next: it goes with the holder."""
    env, args, state, _, _ = fresh
    assert hostpipe("serve", "--detach", *args, env=env, check=False).returncode == 0
    pid = int((state / "serve.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: lock_holder(state) is None, timeout=30)
    wait_for(lambda: not (state / "serve.pid").exists(), timeout=5)
    assert (state / "serve.log").exists()
