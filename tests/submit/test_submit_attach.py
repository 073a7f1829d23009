"""Reconnecting: a client run again with its key picks up the job it submitted instead of running it twice."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.conftest import wait_for

from .support import Client, read_until, records_with, replies, wait_state


def counting_job(tmp_path: Path, marker: str, code: int, *, gate: Path | None = None) -> list[str]:
    """A job that appends to a counter file each time it runs (so a test can count its runs)."""
    counter = tmp_path / f"{marker}.runs"
    wait = f"while [ ! -e {gate} ]; do sleep 0.05; done; " if gate is not None else ""
    script = f"echo run >> {counter}; echo before; {wait}echo after; exit {code}"
    return ["docker", "run", "img", "sh", "-c", script, marker]


def runs(tmp_path: Path, marker: str) -> int:
    counter = tmp_path / f"{marker}.runs"
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def test_running_again_with_the_same_key_file_does_not_run_the_job_twice(client: Client, tmp_path: Path) -> None:
    """A restarted container that runs the same client with the same key file gets the job's output and
    code again, and the job ran once; the second line is recorded as already submitted."""
    marker = f"twice-{client.kind}"
    key_file = tmp_path / "key"
    command = counting_job(tmp_path, marker, 4)

    first = client.run("--wait", "--key-file", str(key_file), "--", *command)
    second = client.run("--wait", "--key-file", str(key_file), "--", *command)

    assert first.returncode == second.returncode == 4
    assert first.stdout.splitlines()[-2:] == second.stdout.splitlines()[-2:] == ["before", "after"]
    assert runs(tmp_path, marker) == 1
    records = records_with(client.daemon, marker)
    assert [(r["state"], r["rule"]) for r in records] == [("failed", None), ("refused", "already-submitted")]


def test_a_client_killed_without_a_word_picks_up_its_running_job_again(client: Client, tmp_path: Path) -> None:
    """SIGKILL gives a client no chance to cancel: run again with its key file, it prints the job's output from
    the start, waits for the end and exits with its code; the job ran once."""
    marker = f"crash-{client.kind}"
    key_file = tmp_path / "key"
    gate = tmp_path / "gate"
    command = counting_job(tmp_path, marker, 6, gate=gate)
    first = client.start("--wait", "--key-file", str(key_file), "--", *command)
    read_until(first, "before", 20)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert wait_state(client.daemon, marker, {"running", "succeeded", "failed", "cancelled"})["state"] == "running"

    second = client.start("--wait", "--key-file", str(key_file), "--", *command)
    try:
        read_until(second, "before", 20)
        gate.touch()
        out, err = second.communicate(timeout=30)
    finally:
        if second.poll() is None:
            second.kill()

    assert second.returncode == 6, err
    assert out.splitlines()[-1] == "after"
    assert runs(tmp_path, marker) == 1


def test_a_reply_is_removed_once_read_and_served_again_on_attach(client: Client, tmp_path: Path) -> None:
    """The client's `done` removes the reply from the shared folder; attaching later (here with the other kind of
    client) makes it again from the record and the log."""
    marker = f"removed-{client.kind}"
    key_file = tmp_path / "key"
    first = client.run("--wait", "--key-file", str(key_file), "--", *counting_job(tmp_path, marker, 3))
    key = key_file.read_text().strip()
    reply = replies(client.daemon) / key[:32]
    assert first.returncode == 3
    wait_for(lambda: not reply.exists(), 10)

    other = Client("dash" if client.kind == "python" else "python", client.daemon)
    attached = other.run("--attach", key)

    assert attached.returncode == 3, attached.stderr
    assert attached.stdout.splitlines()[-2:] == ["before", "after"]
    assert runs(tmp_path, marker) == 1
