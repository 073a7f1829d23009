"""`hostpipe logs`: a job's output, followed while it runs."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.conftest import Daemon, wait_for


def test_follow_prints_output_as_it_comes_and_ends_with_the_job(make_daemon):
    """`logs -f` shows lines while the job runs and returns once the job has ended."""
    daemon: Daemon = make_daemon()
    daemon.write("""docker run test/x sh -c 'echo one; sleep 3; echo two'\n""")
    (record,) = wait_for(lambda: daemon.ps("--state", "running"))
    started = time.monotonic()
    follower = subprocess.Popen(
        [sys.executable, "-m", "hostpipe", "logs", "-f", str(record["id"]), *daemon.args()],
        stdout=subprocess.PIPE,
        text=True,
        env=daemon.env,
    )
    assert follower.stdout is not None
    lines = [follower.stdout.readline() for _ in range(3)]
    assert lines[1:] == ["one\n", "two\n"]
    assert follower.wait(15) == 0
    assert time.monotonic() - started < 15


def test_logs_of_a_refused_line_say_why(make_daemon):
    """A refused line has no log; `logs` says so with the reason and exits 1."""
    daemon: Daemon = make_daemon()
    daemon.write("ls /\n")
    (record,) = daemon.wait_records(1)
    result = daemon.run("logs", str(record["id"]))
    assert result.returncode == 1
    assert "refused" in result.stderr and "not an allowed runtime" in result.stderr
