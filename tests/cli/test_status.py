"""`hostpipe status`: whether a daemon serves the pipe, and what the records say, with or without one."""

from __future__ import annotations

import json
import os

from tests.conftest import Daemon


def test_status_with_a_daemon_names_pid_policy_counts_and_refusals(make_daemon):
    """A serving daemon: its pid, the pipe, the policy file, store health, counts by state, the latest refusal."""
    daemon: Daemon = make_daemon()
    daemon.write("HOSTPIPE_POD=ns/p docker run test/x true\n")
    daemon.write("HOSTPIPE_POD=ns/p ls /\n")
    daemon.wait_records(2)
    result = daemon.run("status", check=True)
    text = result.stdout
    assert f"serving (pid {daemon.daemon_pid()}, holder {daemon.process.pid})" in text  # type: ignore[union-attr]
    assert str(daemon.policy) in text and str(daemon.pipe) in text and "store:    healthy" in text
    assert "1 succeeded, 1 refused" in text or "1 refused, 1 succeeded" in text
    assert "ns/p  program:" in text
    found = json.loads(daemon.run("status", "--json", check=True).stdout)
    assert found["daemon"]["pid"] == daemon.daemon_pid() and found["daemon"]["pipe"] == str(daemon.pipe)
    assert found["records"]["counts"] == {"succeeded": 1, "refused": 1}
    assert found["lock_pid"] == daemon.process.pid  # the holder, which keeps the pipe and the lock
    assert [r["rule"] for r in found["records"]["recent_refusals"]] == ["program"]


def test_status_without_a_daemon_says_so_and_exits_120(make_daemon):
    """After the daemon stopped: "no daemon", the records still counted, exit 120."""
    daemon: Daemon = make_daemon()
    daemon.write("docker run test/x true\n")
    daemon.wait_records(1)
    assert daemon.stop() == 0
    result = daemon.run("status")
    assert result.returncode == 120
    assert "no daemon serves" in result.stdout and "1 succeeded" in result.stdout


def test_status_of_a_state_folder_never_used_says_so(tmp_path):
    """No records file at all: still an answer, not a traceback."""
    from tests.conftest import hostpipe

    result = hostpipe("status", "--state-dir", str(tmp_path / "none"), check=False)
    assert result.returncode == 120 and "no daemon serves" in result.stdout and "no job records" in result.stdout
    assert not os.path.exists(tmp_path / "none")
