"""Nothing a job starts outlives it: a `setsid` child after the job's natural end, cancel, timeout, shutdown and
a restart, and a fork bomb capped by the pids limit. Each case runs with the strongest mechanism this host
offers (a cgroup per job, as root here) and with the subreaper alone (`job_cgroups = false`).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import Daemon, wait_for

ROOT = os.geteuid() == 0
MODES = ["cgroups", "subreaper"]


def _policy(mode: str, *, pids: int = 4096) -> str:
    return f"""
        kill_grace = "1s"
        job_cgroups = {"true" if mode == "cgroups" else "false"}
        max_job_pids = {pids}
        [runtimes.docker]
        """


def _escaping_line(pidfile: Path, tail: str, *, client_id: str = "esc", extra: str = "") -> str:
    """A job whose child leaves its process group and session (setsid) and writes its pid, then `tail`."""
    escapee = f'setsid sh -c "echo \\$\\$ > {pidfile}; exec sleep 300" &'
    return f"HOSTPIPE_ID={client_id} {extra}docker run test/x sh -c '{escapee} {tail}'\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text(errors="replace") if Path(f"/proc/{pid}").exists() else ""
    return " Z " not in stat


def _escapee(pidfile: Path) -> int:
    text = wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=10)
    pid = int(text)
    assert _alive(pid), "the escaped child should be running while its job runs"
    return pid


def _isolation(daemon: Daemon) -> dict[str, object]:
    return next(e for e in reversed(daemon.events()) if e.get("event") == "job_isolation")


def _skip_unless_mode(daemon: Daemon, mode: str) -> None:
    isolation = _isolation(daemon)
    if mode == "cgroups" and not isolation["cgroups"]:
        pytest.skip("this host lets hostpipe make no cgroup (needs root or a delegated cgroup)")
    if mode == "subreaper":
        assert isolation["subreaper"] is True and isolation["cgroups"] is None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ending", ["natural", "cancel", "timeout", "shutdown"])
def test_an_escaped_child_ends_with_its_job(mode, ending, make_daemon, tmp_path):
    """A setsid child of a job is gone within seconds of the job's end, however the job ended."""
    daemon: Daemon = make_daemon(_policy(mode))
    _skip_unless_mode(daemon, mode)
    pidfile = tmp_path / "escapee.pid"
    tail = "sleep 1" if ending == "natural" else "sleep 300"
    extra = "HOSTPIPE_TIMEOUT=2 " if ending == "timeout" else ""
    daemon.write(_escaping_line(pidfile, tail, extra=extra))
    pid = _escapee(pidfile)
    if ending == "cancel":
        (job,) = daemon.ps("--state", "running")
        assert daemon.run("cancel", str(job["id"])).returncode == 0
    if ending == "shutdown":
        assert daemon.stop() == 0
    else:
        (record,) = daemon.wait_records(1, timeout=30)
        assert record["state"] == {"natural": "succeeded", "cancel": "cancelled", "timeout": "timed_out"}[ending]
    wait_for(lambda: not _alive(pid), timeout=10)


@pytest.mark.parametrize("mode", MODES)
def test_an_escaped_child_of_a_crashed_daemons_job_ends_at_the_restart(mode, make_daemon, tmp_path):
    """After the daemon is SIGKILLed, the next one ends the job and the child that left its process group."""
    daemon: Daemon = make_daemon(_policy(mode))
    _skip_unless_mode(daemon, mode)
    pidfile = tmp_path / "escapee.pid"
    daemon.write(_escaping_line(pidfile, "sleep 300"))
    pid = _escapee(pidfile)
    daemon.kill_daemon()
    (record,) = wait_for(lambda: [r for r in daemon.ps() if r["state"] != "running"], timeout=20)
    assert record["state"] == "interrupted"
    wait_for(lambda: not _alive(pid), timeout=10)


def _marked(store_marker: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                data = Path(entry.path, "environ").read_bytes()
            except OSError:
                continue
            if store_marker.encode() in data:
                found.append(int(entry.name))
    return found


BOMB = """\
import subprocess, time
for _ in range(2000):
    try:
        subprocess.Popen(["setsid", "sleep", "300"])
    except OSError:
        pass
time.sleep(300)
"""


def test_a_fork_bomb_stops_at_the_pids_limit_and_nothing_survives_cancel(make_daemon, tmp_path):
    """With max_job_pids 40, a job forking 2000 setsid children never has more than 40, and cancel leaves none."""
    if not ROOT:
        pytest.skip("a pids-limited cgroup needs root or a delegated cgroup")
    daemon: Daemon = make_daemon(_policy("cgroups", pids=40))
    _skip_unless_mode(daemon, "cgroups")
    bomb = tmp_path / "bomb.py"
    bomb.write_text(BOMB)
    daemon.write(f"HOSTPIPE_ID=bomb docker run test/x python3 {bomb}\n")
    (job,) = wait_for(lambda: daemon.ps("--state", "running"), timeout=10)
    isolation = _isolation(daemon)
    time.sleep(3)
    marker = f"HOSTPIPE_JOB={_store_id(daemon)}:{job['id']}"
    alive = _marked(marker)
    assert 0 < len(alive) <= 40, f"{len(alive)} processes of the job are running (cgroup: {isolation['cgroups']})"
    assert daemon.run("cancel", str(job["id"])).returncode == 0
    (record,) = daemon.wait_records(1, timeout=30)
    assert record["state"] == "cancelled"
    wait_for(lambda: not _marked(marker), timeout=10)


def _store_id(daemon: Daemon) -> str:
    import sqlite3

    conn = sqlite3.connect(f"file:{daemon.state_dir / 'hostpipe.sqlite3'}?mode=ro", uri=True)
    try:
        return str(conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()[0])
    finally:
        conn.close()


def test_job_processes_never_stay_after_the_daemon_stops(make_daemon, tmp_path):
    """SIGTERM to hostpipe with an escaped child running: after exit 0, no process of any job is left."""
    daemon: Daemon = make_daemon(_policy("subreaper"))
    pidfile = tmp_path / "escapee.pid"
    daemon.write(_escaping_line(pidfile, "sleep 300"))
    pid = _escapee(pidfile)
    assert daemon.stop(signal.SIGTERM) == 0
    wait_for(lambda: not _alive(pid), timeout=10)
