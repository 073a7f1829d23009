"""Faults in the daemon's own state folder: a full disk, a lock held by someone else, an immutable folder, a
corrupt or removed store. Every line a writer wrote is recorded once the fault is gone; the daemon never dies
of it and says so once. Real processes, a real FIFO and a real sqlite file; the faults that need root (a small
tmpfs, chattr) skip with the reason elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Daemon, wait_for

ROOT = os.geteuid() == 0


def _daemon_at(tmp_path: Path, standin_env: dict[str, str], state_dir: Path, policy: str | None = None) -> Daemon:
    policy_path = tmp_path / "policy.toml"
    policy_path.write_text(policy or 'kill_grace = "1s"\n[runtimes.docker]\n')
    return Daemon(
        pipe=tmp_path / "hostpipe" / "vk-cmd",
        state_dir=state_dir,
        policy=policy_path,
        env=dict(standin_env),
        stderr_path=tmp_path / "serve.log",
    )


@contextlib.contextmanager
def _running(daemon: Daemon) -> Iterator[Daemon]:
    daemon.start()
    try:
        yield daemon
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.stop()


def _events(daemon: Daemon, name: str) -> list[dict[str, object]]:
    return [e for e in daemon.events() if e.get("event") == name]


def _write_many(daemon: Daemon, lines: list[str]) -> None:
    """Each line by its own writer, as pods do; writers may wait while the pipe is full."""
    threads = [threading.Thread(target=daemon.write, args=(line,)) for line in lines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a writer is still blocked"


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    if not ROOT or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs for a full disk needs root")
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mountpoint)], check=False)
    if result.returncode != 0:
        pytest.skip("this machine cannot mount a tmpfs here")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_a_full_state_folder_keeps_every_line_until_space_returns(tmp_path, standin_env, tmpfs):
    """With the disk full, lines wait in the pipe (writers are not refused); once space is back all are recorded."""
    daemon = _daemon_at(tmp_path, standin_env, tmpfs / "state")
    with _running(daemon):
        filler = tmpfs / "filler"
        with filler.open("wb") as out, contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        lines = [f"HOSTPIPE_ID=full{i} docker run test/x\n" for i in range(100)]
        _write_many(daemon, lines)
        wait_for(lambda: _events(daemon, "intake_paused") or _events(daemon, "store_degraded"), timeout=10)
        assert daemon.process is not None and daemon.process.poll() is None
        filler.unlink()
        records = daemon.wait_records(100, timeout=60)
    assert sorted(r["client_id"] for r in records) == sorted(f"full{i}" for i in range(100))
    assert {r["state"] for r in records} == {"succeeded"}


def test_a_store_locked_by_another_process_delays_records_not_the_daemon(make_daemon):
    """Another process holding a write lock for 6 s: cancel still answers at once; every line is recorded after."""
    daemon: Daemon = make_daemon()
    daemon.write("HOSTPIPE_ID=long docker run test/x sleep 60\n")
    (long_job,) = wait_for(lambda: daemon.ps("--state", "running"))
    locker = sqlite3.connect(daemon.state_dir / "hostpipe.sqlite3", isolation_level=None, timeout=10)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        _write_many(daemon, [f"HOSTPIPE_ID=locked{i} docker run test/x\n" for i in range(400)])
        wait_for(lambda: _events(daemon, "store_degraded"), timeout=10)
        started = time.monotonic()
        cancel = daemon.run("cancel", str(long_job["id"]))
        assert cancel.returncode == 0, cancel.stderr
        assert time.monotonic() - started < 3, "the daemon's loop waited on the lock"
        time.sleep(max(0.0, 6 - (time.monotonic() - started)))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    records = daemon.wait_records(401, timeout=60)
    assert sum(1 for r in records if (r["client_id"] or "").startswith("locked")) == 400
    assert {r["state"] for r in records if r["client_id"] != "long"} == {"succeeded"}
    assert next(r for r in records if r["client_id"] == "long")["state"] == "cancelled"
    degraded = _events(daemon, "store_degraded")
    assert [e["kind"] for e in degraded] == ["locked"], "the store's health is reported once per change"
    assert len(_events(daemon, "store_recovered")) == 1


def test_an_immutable_state_folder_does_not_kill_the_daemon(make_daemon):
    """chattr +i on the state folder and its files: the daemon lives on, lines wait, all are recorded after -i."""
    if not ROOT or shutil.which("chattr") is None:
        pytest.skip("chattr +i needs root and e2fsprogs")
    daemon: Daemon = make_daemon()
    daemon.write("HOSTPIPE_ID=ending docker run test/x sleep 4\n")
    wait_for(lambda: daemon.ps("--state", "running"))
    # Every folder and regular file (chattr takes no flags on the control socket).
    targets = [str(p) for p in (daemon.state_dir, *daemon.state_dir.rglob("*")) if p.is_dir() or p.is_file()]
    frozen = subprocess.run(["chattr", "+i", *targets], check=False, capture_output=True)
    if frozen.returncode != 0:
        pytest.skip(f"this file system does not take chattr +i: {frozen.stderr.decode().strip()}")
    try:
        for i in range(20):
            daemon.write(f"HOSTPIPE_ID=frozen{i} docker run test/x\n")
        # The job ending while the folder is immutable makes the writer write; the daemon must live on.
        wait_for(lambda: _events(daemon, "store_degraded") or _events(daemon, "intake_paused"), timeout=15)
        time.sleep(2)
        assert daemon.process is not None and daemon.process.poll() is None
        assert not _events(daemon, "daemon_died")
    finally:
        subprocess.run(["chattr", "-i", *targets], check=False)
    records = daemon.wait_records(21, timeout=60)
    assert sorted(r["client_id"] for r in records) == sorted(["ending", *(f"frozen{i}" for i in range(20))])
    assert {r["state"] for r in records} == {"succeeded"}


def test_a_corrupt_store_at_start_is_one_line_and_a_configuration_error(make_daemon):
    """A store that is not a database stops serve with one line naming the file and exit status 3."""
    daemon: Daemon = make_daemon(start=False)
    daemon.state_dir.mkdir()
    (daemon.state_dir / "hostpipe.sqlite3").write_bytes(b"garbage " * 4096)
    with pytest.raises(AssertionError, match="exited 3") as raised:
        daemon.start()
    lines = daemon.stderr_path.read_text().strip().splitlines()  # type: ignore[union-attr]
    errors = [line for line in lines if line.startswith("hostpipe:")]
    assert len(errors) == 1 and "hostpipe.sqlite3" in errors[0], raised.value
    assert "Traceback" not in daemon.stderr_path.read_text()  # type: ignore[union-attr]


def test_a_store_corrupted_while_serving_is_reported_and_loses_no_line(make_daemon):
    """A store file corrupted under the daemon: it says so once, lives on, and keeps the lines in its inbox."""
    daemon: Daemon = make_daemon()
    daemon.write("docker run test/x\n")
    daemon.wait_records(1)
    for name in ("hostpipe.sqlite3", "hostpipe.sqlite3-wal"):
        if (daemon.state_dir / name).exists():
            with (daemon.state_dir / name).open("r+b") as damaged:
                damaged.write(os.urandom(4096))
    # The writer that reopens the file (as one does after any crash of its own) finds it corrupt.
    os.kill(_writer_pid(daemon.daemon_pid()), signal.SIGKILL)
    for i in range(15):
        daemon.write(f"HOSTPIPE_ID=corrupt{i} docker run test/x\n")
    wait_for(lambda: [e for e in _events(daemon, "store_degraded") if e["kind"] == "corrupt"], timeout=15)
    time.sleep(1)
    assert daemon.process is not None and daemon.process.poll() is None
    inbox = b"".join(p.read_bytes() for p in daemon.state_dir.glob("inbox.*"))
    assert all(f"corrupt{i} ".encode() in inbox for i in range(15)), "the lines are kept in the inbox"
    assert len([e for e in _events(daemon, "store_degraded") if e["kind"] == "corrupt"]) == 1


def test_a_removed_state_folder_is_noticed_made_again_and_keeps_serving(make_daemon):
    """rm -rf of the state folder: logged within seconds, a new store gets the live job and later lines."""
    daemon: Daemon = make_daemon()
    daemon.write("HOSTPIPE_ID=before docker run test/x sleep 30\n")
    (running,) = wait_for(lambda: daemon.ps("--state", "running"))
    shutil.rmtree(daemon.state_dir)
    wait_for(lambda: _events(daemon, "state_dir_lost"), timeout=5)
    daemon.write("HOSTPIPE_ID=after docker run test/x\n")
    wait_for(lambda: (daemon.state_dir / "hostpipe.sqlite3").exists() and daemon.ps("--id", "after"), timeout=15)
    (after,) = daemon.wait_records(2, terminal=False, timeout=15)[-1:]
    assert after["client_id"] == "after" and after["id"] > running["id"]
    restored = daemon.ps("--id", "before")
    assert [r["state"] for r in restored] == ["running"]
    cancel = daemon.run("cancel", str(running["id"]))
    assert cancel.returncode == 0, cancel.stderr
    wait_for(lambda: daemon.ps("--id", "before")[0]["state"] == "cancelled", timeout=15)


def test_a_new_store_beside_old_logs_never_reuses_their_names(make_daemon):
    """An empty store file next to the logs of an earlier one: new ids start above every old log's id."""
    daemon: Daemon = make_daemon()
    for i in range(3):
        daemon.write(f"docker run test/x echo old{i}\n")
    daemon.wait_records(3)
    assert daemon.stop() == 0
    for path in daemon.state_dir.glob("hostpipe.sqlite3*"):
        path.unlink()
    (daemon.state_dir / "hostpipe.sqlite3").write_bytes(b"")
    daemon.start()
    daemon.write("docker run test/x echo new\n")
    (record,) = daemon.wait_records(1)
    assert record["id"] == 4 and record["state"] == "succeeded"
    assert Path(record["log"]).read_text().strip().endswith("new")


def _serve_under(daemon: Daemon, folder: Path, shell: str) -> None:
    """Start `hostpipe serve` after `shell` (e.g. a ulimit) has set up its process, and wait until it is ready."""
    launcher = folder / "launch.sh"
    launcher.write_text(f'#!/bin/sh\n{shell} && exec "$@"\n')
    launcher.chmod(0o755)
    argv = [str(launcher), sys.executable, "-m", "hostpipe", "serve", *daemon.args(), "--log-format", "json"]
    with daemon.stderr_path.open("w") as err:  # type: ignore[union-attr]
        daemon.process = subprocess.Popen(argv, env=daemon.env, stderr=err, stdin=subprocess.DEVNULL, text=True)
    wait_for(daemon.ready, timeout=15)


def test_jobs_wait_in_the_queue_at_a_low_descriptor_limit(make_daemon, tmp_path):
    """At `ulimit -n 128` (soft and hard), 300 short lines all run in turn; none fails for want of descriptors."""
    daemon: Daemon = make_daemon(start=False)
    _serve_under(daemon, tmp_path, "ulimit -n 128")
    lowered = _events(daemon, "max_concurrent_lowered")
    assert lowered and int(lowered[0]["running_at_most"]) < 64  # type: ignore[call-overload]
    for i in range(300):
        daemon.write(f"HOSTPIPE_ID=fd{i} docker run test/x sleep 0.2\n")
    records = daemon.wait_records(300, timeout=120)
    assert {r["state"] for r in records} == {"succeeded"}, {r["reason"] for r in records}
    assert daemon.stop() == 0


def test_a_policy_written_in_steps_is_loaded_once_whole(make_daemon):
    """Appends a moment apart are read once the file is quiet: the half-written policy is never in force."""
    daemon: Daemon = make_daemon("[runtimes.docker]\n")
    steps = ["max_concurrent = 8\n", "[runtimes.docker]\n", "[runtimes.podman]\n"]
    daemon.policy.write_text("")
    for step in steps:
        with daemon.policy.open("a") as policy:
            policy.write(step)
        daemon.write("HOSTPIPE_ID=during docker run test/x\n")
        time.sleep(0.3)
    wait_for(lambda: _events(daemon, "policy_reloaded"), timeout=10)
    time.sleep(1.5)
    reloads = _events(daemon, "policy_reloaded")
    assert len(reloads) == 1 and reloads[0]["runtimes"] == ["docker", "podman"]
    records = daemon.wait_records(3)
    assert {r["state"] for r in records} == {"succeeded"}


def test_kill_signal_to_the_writer_is_survived(make_daemon):
    """The store writer killed with SIGKILL is replaced; the lines written meanwhile are all recorded."""
    daemon: Daemon = make_daemon()
    daemon.write("docker run test/x\n")
    daemon.wait_records(1)
    writer = _writer_pid(daemon.daemon_pid())
    os.kill(writer, signal.SIGKILL)
    for i in range(10):
        daemon.write(f"HOSTPIPE_ID=w{i} docker run test/x\n")
    records = daemon.wait_records(11, timeout=30)
    assert {r["state"] for r in records} == {"succeeded"}
    assert [e["kind"] for e in _events(daemon, "store_degraded")] == ["writer"]


def _writer_pid(daemon_pid: int) -> int:
    children = Path(f"/proc/{daemon_pid}/task/{daemon_pid}/children").read_text().split()
    for child in children:
        if b"hostpipe.daemon.writer" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    raise AssertionError("no store writer among the daemon's children")


def test_a_deleted_fifo_is_noticed_and_made_again(make_daemon):
    """rm of the FIFO: within seconds the daemon says so and makes it again; later lines are recorded."""
    daemon: Daemon = make_daemon()
    daemon.pipe.unlink()
    wait_for(lambda: _events(daemon, "pipe_restored"), timeout=5)
    assert stat.S_ISFIFO(daemon.pipe.lstat().st_mode)
    (lost,) = _events(daemon, "pipe_lost")
    assert lost["state"] == "missing"
    daemon.write("HOSTPIPE_ID=after docker run test/x\n")
    (record,) = daemon.wait_records(1)
    assert (record["client_id"], record["state"]) == ("after", "succeeded")


def test_a_fifo_replaced_by_a_file_keeps_the_lines_written_into_it(make_daemon):
    """A regular file in the FIFO's place (pods' echo then writes into it): its lines are recorded, the file is
    set aside, not deleted, and a new FIFO takes its place."""
    daemon: Daemon = make_daemon()
    daemon.pipe.unlink()
    # What pods' `echo LINE > pipe` does once the path is no FIFO: create and write a regular file.
    daemon.pipe.write_text("HOSTPIPE_ID=in-file-1 docker run test/x\nHOSTPIPE_ID=in-file-2 docker run test/x\n")
    wait_for(lambda: _events(daemon, "pipe_restored"), timeout=5)
    assert stat.S_ISFIFO(daemon.pipe.lstat().st_mode)
    (aside,) = daemon.pipe.parent.glob("vk-cmd.lost-*")
    assert "in-file-1" in aside.read_text()
    records = daemon.wait_records(2)
    assert sorted(r["client_id"] for r in records) == ["in-file-1", "in-file-2"]
    assert {r["state"] for r in records} == {"succeeded"}
    daemon.write("HOSTPIPE_ID=after docker run test/x\n")
    assert daemon.wait_records(3)[-1]["client_id"] == "after"


def test_a_fifo_replaced_by_a_symlink_is_set_aside_without_following_it(make_daemon, tmp_path):
    """A symlink planted at the pipe's path is moved aside (its target untouched) and a FIFO made again."""
    daemon: Daemon = make_daemon()
    target = tmp_path / "precious"
    target.write_text("keep me")
    daemon.pipe.unlink()
    daemon.pipe.symlink_to(target)
    wait_for(lambda: _events(daemon, "pipe_restored"), timeout=5)
    assert stat.S_ISFIFO(daemon.pipe.lstat().st_mode)
    assert target.read_text() == "keep me"
    (aside,) = daemon.pipe.parent.glob("vk-cmd.lost-*")
    assert aside.is_symlink()


def test_the_daemon_raises_its_descriptor_limit_and_jobs_get_the_original(make_daemon, tmp_path):
    """Started with a soft limit of 256 under a hard one of 4096: the daemon uses 4096, a job sees 256."""
    daemon: Daemon = make_daemon(start=False)
    _serve_under(daemon, tmp_path, "ulimit -Sn 256 && ulimit -Hn 4096")
    limits = Path(f"/proc/{daemon.daemon_pid()}/limits").read_text()
    (open_files,) = [line for line in limits.splitlines() if line.startswith("Max open files")]
    assert open_files.split()[3:5] == ["4096", "4096"]
    daemon.write("docker run test/x sh -c 'ulimit -Sn'\n")
    (record,) = daemon.wait_records(1)
    assert Path(record["log"]).read_text().split()[-1] == "256"
    assert daemon.stop() == 0
