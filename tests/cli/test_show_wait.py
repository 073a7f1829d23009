"""`hostpipe show`, `hostpipe wait` and `logs -f` stand in for a job: its fields, its end, its exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from hostpipe.daemon.logcap import cap_log
from tests.conftest import Daemon, hostpipe, wait_for


def test_show_prints_every_field_with_wall_clock_times(make_daemon):
    """`show` names the pod, state, exit, line, runtime and log path, and times as local ISO 8601."""
    daemon: Daemon = make_daemon()
    daemon.write("HOSTPIPE_POD=ns/p HOSTPIPE_ID=j1 docker run test/x sh -c 'exit 3'\n")
    (record,) = daemon.wait_records(1)
    text = daemon.run("show", str(record["id"]), check=True).stdout
    fields = dict(line.split(":", 1) for line in text.splitlines())
    fields = {name: value.strip() for name, value in fields.items()}
    assert fields["pod"] == "ns/p" and fields["client id"] == "j1" and fields["state"] == "failed"
    assert fields["exit"] == "3" and fields["runtime"] == "docker" and fields["log"] == record["log"]
    assert fields["reason"] == record["reason"]
    started = datetime.fromisoformat(fields["started"])
    assert abs(started.timestamp() - record["started_at"]) < 1 and started.utcoffset() is not None
    assert json.loads(daemon.run("show", "--json", str(record["id"]), check=True).stdout) == record


def test_show_of_an_unknown_job_says_so_and_exits_1(make_daemon):
    """No such record: one line, exit 1."""
    daemon: Daemon = make_daemon()
    result = daemon.run("show", "99")
    assert result.returncode == 1 and "no job 99" in result.stderr


def test_wait_exits_with_each_outcome_code(make_daemon):
    """wait passes the job's own code through, 128+N for a signal, and 122 for a refused line."""
    daemon: Daemon = make_daemon()
    daemon.write("docker run test/x sh -c 'exit 7'\n")
    daemon.write("docker run test/x sh -c 'kill -TERM $$'\n")
    daemon.write("ls\n")
    daemon.write("docker run test/x true\n")
    failed, killed, refused, ok = daemon.wait_records(4)
    assert daemon.run("wait", str(failed["id"])).returncode == 7
    assert daemon.run("wait", str(killed["id"])).returncode == 128 + 15
    assert daemon.run("wait", str(refused["id"])).returncode == 122
    assert daemon.run("wait", str(ok["id"])).returncode == 0
    both = daemon.run("wait", str(ok["id"]), str(failed["id"]))
    assert both.returncode == 7 and "exit code 7" in both.stderr


def test_wait_blocks_until_the_job_ends_and_honours_its_timeout(make_daemon):
    """wait returns when a running job ends; with a shorter --timeout it gives up first with 124."""
    daemon: Daemon = make_daemon()
    daemon.write("docker run test/x sh -c 'sleep 6; exit 5'\n")
    (record,) = wait_for(lambda: daemon.ps("--state", "running"))
    started = time.monotonic()
    short = daemon.run("wait", "--timeout", "0.3s", str(record["id"]))
    assert short.returncode == 124 and "--timeout" in short.stderr
    assert daemon.run("wait", str(record["id"])).returncode == 5
    assert time.monotonic() - started < 25


def test_wait_and_follow_stop_when_the_daemon_is_gone(make_daemon):
    """A job recorded running after its daemon was killed: wait and logs -f say so and exit 120, not hang."""
    daemon: Daemon = make_daemon()
    daemon.write("docker run test/x sleep 60\n")
    (record,) = wait_for(lambda: daemon.ps("--state", "running"))
    daemon.kill_all()
    for args in (["wait", str(record["id"])], ["logs", "-f", str(record["id"])]):
        result = daemon.run(*args)
        assert result.returncode == 120, args
        assert "no daemon serves" in result.stderr and result.stderr.count("\n") == 1
    assert "running? (no daemon)" in daemon.run("ps", check=True).stdout
    assert "running? (no daemon)" in daemon.run("show", str(record["id"]), check=True).stdout


def test_follow_ends_with_the_jobs_exit_code(make_daemon):
    """`logs -f` of a job that fails prints its output and exits with the job's code, not 0."""
    daemon: Daemon = make_daemon()
    daemon.write("docker run test/x sh -c 'sleep 1; echo bye; exit 9'\n")
    (record,) = wait_for(lambda: daemon.ps("--state", "running"))
    follower = subprocess.run(
        [sys.executable, "-m", "hostpipe", "logs", "-f", str(record["id"]), *daemon.args()],
        capture_output=True,
        text=True,
        env=daemon.env,
        timeout=30,
        check=False,
    )
    assert follower.returncode == 9
    assert follower.stdout.endswith("bye\n") and "exit code 9" in follower.stderr


def test_logs_of_a_capped_log_show_a_marker_not_zeros(make_daemon):
    """A log with a hole punched by the cap reads back as its data with one marker line in place of the hole."""
    daemon: Daemon = make_daemon()
    daemon.write("docker run test/x seq 1 400000\n")
    (record,) = daemon.wait_records(1)
    log = Path(record["log"])
    dropped = cap_log(log, 256 << 10)
    assert dropped is not None
    shown = hostpipe("logs", str(record["id"]), *daemon.args(), env=daemon.env).stdout
    assert "\0" not in shown and shown.count("dropped here at the log cap") == 1
    assert shown.endswith("399999\n400000\n")
