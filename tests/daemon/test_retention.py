"""Retention: records and logs older than the policy's `retention` go, by the daemon's sweeps and `hostpipe clean`.

Measured before: nothing was ever removed (50,000 jobs left 50,000 log files and their records). Here real jobs
run and end, and their records and logs disappear once they are old enough, while queued and running jobs, and
everything younger, stay.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from hostpipe.daemon.records import JobRecord, Reader
from tests.conftest import Daemon, wait_for

POLICY = 'max_concurrent = 8\nkill_grace = "1s"\n[runtimes.docker]\n'


def records(daemon: Daemon) -> list[JobRecord]:
    reader = Reader(daemon.state_dir)
    try:
        return reader.jobs()
    finally:
        reader.close()


def log_files(state_dir: Path) -> list[Path]:
    return sorted((state_dir / "logs").rglob("*.log"))


def test_the_daemon_removes_records_and_logs_older_than_the_retention(make_daemon):
    """With retention = "3s", ended jobs and refused lines vanish a few seconds after they end; a running job stays."""
    daemon: Daemon = make_daemon('retention = "3s"\nrefused_per_pod = 100\n' + POLICY)
    daemon.write("HOSTPIPE_POD=ns/long HOSTPIPE_ID=long docker run test/x sleep 12\n")
    for number in range(30):
        daemon.write(f"HOSTPIPE_POD=ns/quick HOSTPIPE_ID=q{number} docker run test/x echo {number}\n")
        daemon.write(f"HOSTPIPE_POD=ns/quick ls {number}\n")
    wait_for(lambda: len(daemon.ps("--state", "succeeded")) == 30, timeout=30)
    assert len(log_files(daemon.state_dir)) == 31
    # Three seconds after their end, the quick jobs and the refused lines are gone, logs and all.
    wait_for(lambda: [r["client_id"] for r in daemon.ps()] == ["long"], timeout=15, interval=0.2)
    assert [p.name for p in log_files(daemon.state_dir)] == ["1.log"]
    swept = [e for e in daemon.events() if e["event"] == "retention_swept"]
    assert sum(e["records"] for e in swept) == 60 and sum(e["logs"] for e in swept) == 30
    assert all(e["older_than"] == 3 and e["bytes"] > 0 for e in swept if e["logs"])
    # The long job ran on: it goes three seconds after its own end, not its start.
    (long,) = daemon.wait_records(1, timeout=20)
    assert long["state"] == "succeeded"
    wait_for(lambda: daemon.ps() == [] and log_files(daemon.state_dir) == [], timeout=15, interval=0.2)
    # Records go on numbered after the removed ones.
    daemon.write("docker run test/x\n")
    (new,) = daemon.wait_records(1)
    assert new["id"] == 62
    assert daemon.stop() == 0


def test_retention_leaves_a_summary_alone_while_it_counts(make_daemon):
    """A summary of refused lines stays while its interval runs, however old its lines, so no count is lost."""
    policy = 'retention = "1s"\nrefused_interval = "6s"\nrefused_per_pod = 0\nrefused_overall = 0\n' + POLICY
    daemon: Daemon = make_daemon(policy)
    wait_for(lambda: time.time() % 6 < 0.3, timeout=7, interval=0.01)
    window = time.time() // 6 * 6
    for number in range(3):
        daemon.write(f"HOSTPIPE_POD=ns/a ls {number}\n")
    wait_for(lambda: time.time() >= window + 3, timeout=5, interval=0.05)
    # Its last line is some three seconds old: older than the retention, and still counting.
    (summary,) = records(daemon)
    assert (summary.lines, summary.rule, summary.last_line) == (3, "rate-limit", "HOSTPIPE_POD=ns/a ls 2")
    daemon.write("HOSTPIPE_POD=ns/a ls 3\n")
    wait_for(lambda: records(daemon)[0].lines == 4, timeout=2, interval=0.02)
    (summary,) = records(daemon)
    assert summary.last_line == "HOSTPIPE_POD=ns/a ls 3" and (summary.ended_at or 0) >= window + 3
    assert time.time() < window + 6, "the machine was too slow to write within the interval"
    # Once the interval has ended, the summary is old like any record, and goes.
    wait_for(lambda: records(daemon) == [], timeout=10, interval=0.1)
    assert time.time() >= window + 6
    assert daemon.stop() == 0


def test_clean_through_the_daemon_removes_what_is_older_now(make_daemon):
    """`hostpipe clean --older-than 0` asks the running daemon: every ended record and its log goes, live jobs stay."""
    daemon: Daemon = make_daemon(POLICY)
    daemon.write("HOSTPIPE_ID=long docker run test/x sleep 30\n")
    for number in range(5):
        daemon.write(f"HOSTPIPE_POD=ns/a docker run test/x echo {number}\n")
    daemon.write("ls\n")
    wait_for(lambda: len(daemon.ps("--state", "succeeded")) == 5, timeout=20)
    result = daemon.run("clean", "--older-than", "1h")
    assert (result.returncode, result.stdout) == (0, "removed 0 records and 0 logs (0 bytes) older than 1h\n")
    result = daemon.run("clean", "--older-than", "0", "--json")
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert (reply["records"], reply["logs"], reply["older_than"]) == (6, 5, 0)
    assert [(r["client_id"], r["state"]) for r in daemon.ps()] == [("long", "running")]
    assert [p.name for p in log_files(daemon.state_dir)] == ["1.log"]
    (event,) = [e for e in daemon.events() if e["event"] == "retention_swept" and e["records"]]
    assert (event["on_demand"], event["records"], event["logs"]) == (True, 6, 5)
    assert daemon.stop() == 0


def test_clean_without_a_daemon_holds_the_state_folders_lock(make_daemon):
    """With no daemon, `hostpipe clean` works on the store itself; it never runs beside a daemon that holds the lock."""
    daemon: Daemon = make_daemon('retention = "5s"\n' + POLICY)
    for number in range(4):
        daemon.write(f"HOSTPIPE_POD=ns/gone docker run test/x echo {number}\n")
    daemon.wait_records(4)
    assert daemon.stop() == 0
    time.sleep(5.1)
    # A lock held as a daemon holds it, with no control socket: clean refuses rather than race that daemon.
    lock = os.open(daemon.state_dir / "serve.lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused = daemon.run("clean")
    finally:
        os.close(lock)
    assert refused.returncode == 4 and "another hostpipe serve" in refused.stderr
    assert len(daemon.ps()) == 4
    # An orphan log (a store was replaced) as old as the retention goes too; a young one stays.
    logs = daemon.state_dir / "logs"
    orphan, young = logs / "ns" / "old" / "900.log", logs / "ns" / "old" / "901.log"
    orphan.parent.mkdir(parents=True)
    orphan.write_text("orphan\n")
    young.write_text("young\n")
    os.utime(orphan, (time.time() - 60, time.time() - 60))
    result = daemon.run("clean")
    assert (result.returncode, result.stdout.split()[:5]) == (0, ["removed", "4", "records", "and", "5"])
    assert daemon.ps() == []
    assert log_files(daemon.state_dir) == [young]
    assert sorted(p.name for p in logs.iterdir()) == ["ns"] and sorted(p.name for p in (logs / "ns").iterdir()) == [
        "old"
    ]


def test_clean_asks_for_an_age_when_the_policy_keeps_everything(make_daemon):
    """retention = 0 keeps records for ever: `clean` without --older-than says so instead of guessing."""
    daemon: Daemon = make_daemon("retention = 0\n" + POLICY)
    daemon.write("docker run test/x\n")
    daemon.wait_records(1)
    result = daemon.run("clean")
    assert result.returncode == 2 and "--older-than" in result.stderr
    bad = daemon.run("clean", "--older-than", "soon")
    assert bad.returncode == 2 and "not understood" in bad.stderr
    assert len(daemon.ps()) == 1
    assert daemon.stop() == 0
