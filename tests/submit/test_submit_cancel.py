"""Output while the job runs, cancelling by killing the client, and what a key (or a pod name) lets one do."""

from __future__ import annotations

import json
import secrets
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for

from .support import Client, control, read_until, records_with, replies, terminate, wait_state

LIVE = {"queued", "running"}


def test_output_arrives_while_the_job_runs(client: Client, tmp_path: Path) -> None:
    """The first line reaches the client while the job still runs (it waits for a file the test makes later)."""
    go = tmp_path / "go"
    script = f"echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo second; exit 7"
    process = client.start("--wait", "--", "docker", "run", "img", "sh", "-c", script)
    try:
        read_until(process, "first", 20)
        assert process.poll() is None
        [record] = records_with(client.daemon, str(go))
        assert record["state"] == "running"
        go.touch()
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 7, err
    assert out.splitlines()[-1] == "second"


def test_killing_the_client_cancels_the_job_and_leaves_a_record(client: Client) -> None:
    """SIGTERM to a waiting client (vk-cmd deleting the pod) cancels its job: the record says cancelled."""
    marker = f"killed-{client.kind}-{secrets.token_hex(3)}"
    process = client.start("--wait", "--", "docker", "run", "img", "sh", "-c", f"echo {marker}; sleep 300")
    wait_state(client.daemon, marker, {"running"})

    code, _out, err = terminate(process)

    assert code == 128 + signal.SIGTERM
    record = wait_state(client.daemon, marker, {"cancelled"}, timeout=15)
    assert record["ended_at"] is not None
    assert record["ended_at"] - record["started_at"] < 30
    assert "cancelled" in err  # the daemon's reason, as the client read it from the reply


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP], ids=["SIGINT", "SIGHUP"])
def test_an_interrupt_or_hangup_cancels_too(client: Client, sig: signal.Signals) -> None:
    """SIGINT and SIGHUP cancel the job as SIGTERM does, and the client exits 128+N."""
    marker = f"{sig.name}-{client.kind}-{secrets.token_hex(3)}"
    process = client.start("--wait", "--", "docker", "run", "img", "sh", "-c", f"echo {marker}; sleep 300")
    wait_state(client.daemon, marker, {"running"})

    code, _, _ = terminate(process, sig)

    assert code == 128 + sig
    wait_state(client.daemon, marker, {"cancelled"}, timeout=15)


def test_another_key_or_a_pod_name_neither_cancels_nor_takes_over_the_job(client: Client, tmp_path: Path) -> None:
    """Only the job's own key cancels it: another client's key, the nonce with another token, and a pod name
    are refused, and the reply is left as it is; the job's own key then cancels it."""
    daemon = client.daemon
    key_file = tmp_path / "key"
    marker = f"victim-{client.kind}-{secrets.token_hex(3)}"
    process = client.start(
        "--wait",
        "--key-file",
        str(key_file),
        "--pod",
        "ns/victim",
        "--",
        "docker",
        "run",
        "img",
        "sh",
        "-c",
        "sleep 300",
        marker,
    )
    try:
        wait_state(daemon, marker, {"running"})
        key = key_file.read_text().strip()
        reply = replies(daemon) / key[:32]
        before = sorted(p.name for p in reply.iterdir())
        other = secrets.token_hex(32)
        forged = key[:32] + other[32:]

        for op in ("cancel", "attach", "done"):
            control(daemon, op, other)
            control(daemon, op, forged)
        by_pod_line = json.dumps({"op": "cancel", "pod": "ns/victim", "id": marker})
        daemon.write(by_pod_line + "\n")
        daemon.write(f"HOSTPIPE_REPLY={forged} HOSTPIPE_POD=ns/victim docker run img echo {marker}-forged\n")
        wait_for(lambda: records_with(daemon, f"{marker}-forged"), 10)
        time.sleep(1.5)  # a cancel that worked would have ended the job well within this

        [job] = [r for r in records_with(daemon, marker) if r["state"] in LIVE]
        assert job["state"] == "running"
        [forged_record] = records_with(daemon, f"{marker}-forged")
        assert (forged_record["state"], forged_record["rule"]) == ("refused", "reply-key-in-use")
        [by_pod] = [r for r in daemon.ps() if r["line"] == by_pod_line]
        assert (by_pod["state"], by_pod["rule"]) == ("refused", "bad-field")
        assert sorted(p.name for p in reply.iterdir()) == before
        assert process.poll() is None

        control(daemon, "cancel", key)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 123, err
    assert "cancelled" in err
    assert wait_state(daemon, marker, {"cancelled"})["id"] == job["id"]


def test_a_key_of_its_own_gives_a_client_nothing_of_another_job(client: Client) -> None:
    """Attaching with a key no job was submitted with says so (121) and shows no other job's output."""
    client.run("--wait", "--", "docker", "run", "img", "echo", "someone-elses-output")

    result = client.run("--attach", secrets.token_hex(32))

    assert result.returncode == 121
    assert "no job was submitted with this reply key" in result.stderr
    assert "someone-elses-output" not in result.stdout
