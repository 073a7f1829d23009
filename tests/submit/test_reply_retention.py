"""How long replies stay in the shared folder: until their client has read them, or `retention` after the job
ended; a restarted daemon takes over the replies it finds and removes what it did not make."""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import DEFAULT_POLICY, Daemon, wait_for

from .support import Client, client_env, read_until, replies, start_daemon


def with_retention(value: str) -> str:
    return f'retention = "{value}"\n' + DEFAULT_POLICY


def submitted(daemon: Daemon, marker: str) -> str:
    """Submit without waiting (so no client says `done`) and wait until the reply holds the job's result; its key."""
    result = Client("python", daemon).run("--", "docker", "run", "img", "echo", marker)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    wait_for((replies(daemon) / key[:32] / "result").exists, 10)
    return key


def test_an_unread_reply_is_removed_after_the_retention(fresh_daemon: Callable[..., Daemon]) -> None:
    """A reply no client removed goes `retention` after its job ended, as the job's record and log do."""
    daemon = fresh_daemon(with_retention("3s"))
    key = submitted(daemon, "kept-3s")
    reply = replies(daemon) / key[:32]
    [record] = daemon.ps()
    assert record["state"] == "succeeded"

    wait_for(lambda: not reply.exists(), 15)

    assert time.time() - record["ended_at"] >= 3.0 - 0.5
    # The folder goes before the event that reports it is written: wait for the event, do not race it.
    wait_for(lambda: any(e.get("event") == "replies_removed" for e in daemon.events()), 5)


def test_with_retention_zero_a_reply_stays_until_its_client_has_read_it(fresh_daemon: Callable[..., Daemon]) -> None:
    """retention = 0 keeps an unread reply; the client's `done` (sent after it read the result) removes it."""
    daemon = fresh_daemon(with_retention("0"))
    key = submitted(daemon, "kept-forever")
    reply = replies(daemon) / key[:32]
    time.sleep(2.5)
    assert (reply / "result").exists()

    attached = Client("busybox", daemon).run("--attach", key)

    assert attached.returncode == 0
    wait_for(lambda: not reply.exists(), 10)


def test_a_restarted_daemon_keeps_old_replies_for_their_retention_and_removes_the_rest(tmp_path: Path) -> None:
    """After a restart the daemon finds a previous daemon's reply (writing its missing result again) and keeps
    it for the rest of its retention; entries it never made are removed."""
    folder = tmp_path / "d"
    first = start_daemon(folder, client_env(), with_retention("12s"))
    try:
        key = submitted(first, "old-reply")
        reply = replies(first) / key[:32]
        wait_for((reply / "result").exists, 5)
        first.stop()
    finally:
        first.kill_all()
    (reply / "result").unlink()
    junk = replies(first)
    (junk / secrets.token_hex(16)).mkdir()  # named like a reply, but no job has it
    (junk / "not-a-reply").mkdir()
    (junk / "not-a-reply" / "file").write_text("x")
    (junk / ".tmp-leftover").write_text("x")

    second = start_daemon(folder, client_env(), with_retention("4s"))
    try:
        wait_for(lambda: sorted(p.name for p in junk.iterdir() if p.name != "alive") == [key[:32]], 10)
        wait_for((reply / "result").exists, 5)
        assert b"state=succeeded" in (reply / "result").read_bytes()
        wait_for(lambda: not reply.exists(), 15)
    finally:
        second.kill_all()


def test_a_waiting_client_learns_that_the_daemon_died_under_its_job(fresh_daemon: Callable[..., Daemon]) -> None:
    """The daemon killed while a client waits: the next daemon records the job as interrupted, writes that into
    the reply, and the client exits 121 (the daemon lost the job) with the reason."""
    daemon = fresh_daemon()
    client = Client("dash", daemon)
    process = client.start("--wait", "--", "docker", "run", "img", "sh", "-c", "echo up; sleep 300")
    try:
        read_until(process, "up", 20)
        daemon.kill_daemon()
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
    assert process.returncode == 121, err
    assert "interrupted" in err
