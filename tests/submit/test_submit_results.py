"""What a waiting client gets back: the job's exit code, its output, and hostpipe's own outcomes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DEFAULT_POLICY, Daemon, wait_for

from .support import Client, read_until, records_with


@pytest.mark.parametrize(
    ("command", "code"),
    [("exit 0", 0), ("exit 1", 1), ("kill -KILL $$", 137)],
    ids=["exit-0", "exit-1", "sigkill-137"],
)
def test_the_jobs_exit_code_comes_back(client: Client, command: str, code: int) -> None:
    """The client exits with the job's own exit code, and a job killed by SIGKILL gives 137."""
    marker = f"codes-{client.kind}-{code}"
    result = client.run("--wait", "--", "docker", "run", "img", "sh", "-c", f"echo {marker}; {command}")

    assert result.returncode == code, result.stderr
    assert marker in result.stdout
    assert result.stderr == ""  # nothing of hostpipe's own when the job's code speaks for itself


def test_a_refused_line_comes_back_at_once_with_its_reason(client: Client) -> None:
    """A refused request ends the client at once with 122 and one line on stderr: the rule, argument and reason."""
    started = time.monotonic()
    result = client.run("--wait", "--", "docker", "run", "--privileged", f"refused-{client.kind}")

    assert result.returncode == 122
    assert time.monotonic() - started < 5
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "refused (privileged at '--privileged')" in line
    assert "allow_options" in line  # what to write instead
    [record] = records_with(client.daemon, f"refused-{client.kind}")
    assert (record["state"], record["rule"]) == ("refused", "privileged")


def test_a_timed_out_job_exits_124_with_the_reason(client: Client) -> None:
    """A job stopped at its timeout ends the client with timeout(1)'s 124 and says so on stderr."""
    result = client.run("--wait", "--timeout", "1", "--", "docker", "run", "img", "sleep", "30")

    assert result.returncode == 124
    assert "timed out" in result.stderr


def test_the_output_and_stderr_of_the_job_reach_stdout_in_order(client: Client) -> None:
    """The job's stdout and stderr come back merged on the client's stdout (vk-cmd fails a pod on any stderr)."""
    script = "echo one; echo two >&2; echo three"
    result = client.run("--wait", "--", "docker", "run", "img", "sh", "-c", script)

    assert result.returncode == 0
    assert result.stdout.splitlines()[-3:] == ["one", "two", "three"]
    assert result.stderr == ""


@pytest.mark.parametrize(
    "word",
    ["it's", 'say "hi"', "back\\slash", "$HOME", "~", "*", "{a,b}", "a b", "", "é ünïcode", "--", "#x", ";&|", "'"],
)
def test_every_argument_reaches_the_job_as_written(client: Client, word: str) -> None:
    """Quotes, expansions, patterns, blanks and empty words reach the job's argv unchanged, through both forms."""
    result = client.run("--wait", "--", "docker", "run", "img", "printf", "[%s]\\n", word, "end")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [f"[{word}]", "[end]"]


def test_pod_and_id_come_from_options_and_the_downward_api(client: Client) -> None:
    """--pod and --id name the job; without --pod, POD_NAMESPACE and POD_NAME (Downward API) name the pod."""
    given = client.run("--wait", "--pod", "ns/given", "--id", "run-1", "--", "docker", "run", "img", "true")
    downward = client.run(
        "--wait", "--", "docker", "run", "img", "true", env={"POD_NAMESPACE": "jiriaf", "POD_NAME": f"p-{client.kind}"}
    )

    assert given.returncode == downward.returncode == 0
    pods = {(r["pod"], r["client_id"]) for r in client.daemon.ps()}
    assert ("ns/given", "run-1") in pods
    assert (f"jiriaf/p-{client.kind}", None) in pods


def test_a_detached_run_is_waited_for_like_any_other(client: Client) -> None:
    """`docker run -d` is a job like any other: the client waits for its record's end and exits with its code."""
    result = client.run("--wait", "--", "docker", "run", "-d", "img", "sh", "-c", "echo detached; exit 3")

    assert result.returncode == 3
    assert "detached" in result.stdout


def test_without_wait_the_client_prints_the_key_and_attach_picks_up_the_result(client: Client) -> None:
    """Without --wait the client returns once the job is taken, printing its key; --attach KEY gets its end."""
    submitted = client.run("--", "docker", "run", "img", "sh", "-c", "echo later; exit 5")

    assert submitted.returncode == 0, submitted.stderr
    [key] = submitted.stdout.split()
    attached = client.run("--attach", key)
    assert attached.returncode == 5
    assert "later" in attached.stdout


def test_the_token_never_reaches_the_record(client: Client) -> None:
    """The record keeps the reply key's nonce (which names the reply) and the token's hash, never the token."""
    submitted = client.run("--", "docker", "run", "img", "echo", f"token-{client.kind}")
    [key] = submitted.stdout.split()
    [record] = records_with(client.daemon, f"token-{client.kind}")

    assert key[:32] in record["line"]
    assert key[32:] not in record["line"]
    with sqlite3.connect(client.daemon.state_dir / "hostpipe.sqlite3") as conn:
        stored = conn.execute("SELECT reply_nonce, token_hash FROM jobs WHERE id = ?", (record["id"],)).fetchone()
    assert stored == (key[:32], hashlib.sha256(key[32:].encode()).hexdigest())
    # The store's files, whatever is still in its write-ahead log (the inbox keeps raw lines until it rotates).
    for path in client.daemon.state_dir.glob("hostpipe.sqlite3*"):
        assert key[32:].encode() not in path.read_bytes(), path


def test_bad_usage_exits_125(client: Client) -> None:
    """A usage error is the client's own failure, 125, never a code a job could be mistaken for as easily."""
    assert client.run("--wait").returncode == 125
    assert client.run("--bogus", "--", "docker", "run", "img").returncode == 125
    assert client.run("--attach", "not-a-key").returncode == 125


def test_no_daemon_answering_exits_120(kind: str, fresh_daemon: Callable[..., Daemon]) -> None:
    """With the daemon gone (its pipe left without a reader), the client gives up after its patience with 120."""
    daemon: Daemon = fresh_daemon()
    daemon.stop()
    client = Client(kind, daemon)
    started = time.monotonic()
    result = client.run("--no-daemon-after", "1", "--wait", "--", "docker", "run", "img", "true")

    assert result.returncode == 120
    assert "no daemon" in result.stderr
    assert time.monotonic() - started < 10


def test_a_queued_job_is_waited_for_silently(kind: str, fresh_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    """Behind a full max_concurrent the client prints nothing until its job runs; --verbose says it is queued
    (on stdout)."""
    daemon = fresh_daemon("max_concurrent = 1\n" + DEFAULT_POLICY.replace("max_concurrent = 64\n", ""))
    gate = tmp_path / "gate"
    first = Client(kind, daemon).start(
        "--wait", "--", "docker", "run", "img", "sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"
    )
    wait_for(lambda: [r["state"] for r in daemon.ps()] == ["running"], 20)
    quiet = Client(kind, daemon).start("--wait", "--", "docker", "run", "img", "echo", "second-ran")
    verbose = Client(kind, daemon).start("--wait", "-v", "--", "docker", "run", "img", "echo", "third-ran")
    try:
        wait_for(lambda: sum(r["state"] == "queued" for r in daemon.ps()) == 2, 20)
        time.sleep(1)
        assert quiet.poll() is None and verbose.poll() is None
        gate.touch()
        outputs = [process.communicate(timeout=30) for process in (first, quiet, verbose)]
    finally:
        for process in (first, quiet, verbose):
            if process.poll() is None:
                process.kill()
    assert [process.returncode for process in (first, quiet, verbose)] == [0, 0, 0]
    assert all(err == "" for _, err in outputs)
    notes = [[line for line in out.splitlines() if line.startswith("hostpipe")] for out, _ in outputs]
    assert "second-ran" in outputs[1][0] and notes[1] == []
    assert "third-ran" in outputs[2][0]
    assert any(re.fullmatch(r"hostpipe(-submit)?: job \d+ queued", line) for line in notes[2]), notes[2]


def test_a_client_gives_up_when_the_daemon_is_gone_while_it_waits(
    kind: str, fresh_daemon: Callable[..., Daemon]
) -> None:
    """With no daemon left (holder and daemon killed) the reply stops being kept alive: the client says so
    and exits 120 after --no-daemon-after seconds."""
    daemon = fresh_daemon()
    process = Client(kind, daemon).start(
        "--wait", "--no-daemon-after", "2", "--", "docker", "run", "img", "sh", "-c", "echo up; sleep 300"
    )
    try:
        read_until(process, "up", 20)
        [record] = daemon.ps()
        daemon.kill_all()
        started = time.monotonic()
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.killpg(record["pid"], signal.SIGKILL)  # the job outlives a killed daemon: end it here
    assert process.returncode == 120
    assert "no daemon answered" in err
    assert time.monotonic() - started < 15
