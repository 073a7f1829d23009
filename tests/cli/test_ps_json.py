"""`hostpipe ps --json` is read by programs: its shape is pinned here."""

from __future__ import annotations

from tests.conftest import Daemon

KEYS = {
    "id", "pod", "client_id", "state", "exit_code", "signal", "reason", "rule", "argument", "argv", "line",
    "runtime", "image", "pid", "timeout", "submitted_at", "started_at", "ended_at", "log", "container_id",
    "detached", "log_dropped", "lines", "last_line",
}  # fmt: skip


def test_ps_json_shape_is_pinned(make_daemon):
    """One JSON array of objects with exactly these keys and types; states spelled as documented."""
    daemon: Daemon = make_daemon()
    daemon.write("HOSTPIPE_POD=ns/p HOSTPIPE_ID=j1 docker run test/x\n")
    daemon.write("ls\n")
    ran, refused = daemon.wait_records(2)
    assert set(ran) == KEYS and set(refused) == KEYS
    assert ran["id"] + 1 == refused["id"]
    assert (ran["pod"], ran["client_id"], ran["state"], ran["exit_code"]) == ("ns/p", "j1", "succeeded", 0)
    assert ran["argv"] == ["docker", "run", "test/x"] and ran["runtime"] == "docker" and ran["image"] == "test/x"
    assert isinstance(ran["pid"], int) and ran["submitted_at"] <= ran["started_at"] <= ran["ended_at"]
    assert (refused["state"], refused["rule"], refused["argument"]) == ("refused", "program", "ls")
    assert refused["exit_code"] is None and refused["log"] is None and refused["argv"] == ["ls"]


def test_ps_filters_by_pod_and_state(make_daemon):
    """--pod and --state narrow the list; the text table names the pod and the state."""
    daemon: Daemon = make_daemon()
    daemon.write("HOSTPIPE_POD=ns/a docker run test/x\n")
    daemon.write("HOSTPIPE_POD=ns/b docker run test/x\n")
    daemon.write("HOSTPIPE_POD=ns/b ls\n")
    daemon.wait_records(3)
    assert [r["pod"] for r in daemon.ps("--pod", "ns/b")] == ["ns/b", "ns/b"]
    assert [r["state"] for r in daemon.ps("--pod", "ns/b", "--state", "refused")] == ["refused"]
    table = daemon.run("ps", "--pod", "ns/a", check=True).stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "POD", "STATE", "EXIT"]
    assert table[1].split()[1:4] == ["ns/a", "succeeded", "0"]


def test_errors_are_one_line_without_traceback(tmp_path):
    """A command that cannot work for now says why in one line and exits with the transient failure code (4)."""
    from tests.conftest import hostpipe

    result = hostpipe("ps", "--state-dir", str(tmp_path / "none"), check=False)
    assert result.returncode == 4
    assert result.stderr.count("\n") == 1 and "no job records" in result.stderr
    assert "Traceback" not in result.stderr
