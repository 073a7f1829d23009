"""Per-job cgroups: a job's child moves itself into its cgroup before it execs the job, so even a child the job
forks at once is inside; ending the job kills every member, and the cgroup (a slot) is reused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hostpipe.daemon import jobcgroups
from hostpipe.daemon.jobcgroups import JobCgroups
from hostpipe.daemon.spawn import prelude, spawn
from tests.conftest import wait_for

FORKS_AT_ONCE = "sh -c 'echo $$ > \"$0\"; exec sleep 30' {pidfile} & exec sleep 30"


def _cgroups(kind: str, tmp_path: Path) -> JobCgroups:
    if os.geteuid() != 0:
        pytest.skip("making cgroups needs root (or a delegated cgroup)")
    name = f"hostpipe-test-{os.getpid()}-{tmp_path.name}"[:60]
    if kind == "v1 pids":
        own = jobcgroups._own_cgroup("pids")
        base = Path("/sys/fs/cgroup/pids") / (own or "/").lstrip("/") / name
    else:
        root, own = jobcgroups._unified_root(), jobcgroups._own_cgroup(None)
        if root is None or own is None:
            pytest.skip("no unified cgroup hierarchy here")
        base = root / own.lstrip("/") / name
    made = JobCgroups._make(base)
    if made is None:
        pytest.skip(f"cannot make a cgroup under {base.parent}")
    return JobCgroups(made, kind, 20 if kind == "v1 pids" else 0)


def _cgroup_of(pid: int, controller: str) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (controller == "" and controllers == "") or controller in controllers.split(","):
            return path
    return ""


@pytest.mark.parametrize("kind", ["v1 pids", "v2"])
def test_a_child_forked_at_once_is_born_in_the_jobs_cgroup_and_dies_with_it(kind, tmp_path):
    """The job's first fork happens before any parent-side move could; it is in the cgroup all the same."""
    cgroups = _cgroups(kind, tmp_path)
    pidfile = tmp_path / "child.pid"
    argv = ("/bin/sh", "-c", FORKS_AT_ONCE.format(pidfile=pidfile))
    try:
        argv = prelude(argv, cgroup_procs=cgroups.acquire(7), nofile=None)
        leader = spawn(argv, {"PATH": "/usr/bin:/bin"}, tmp_path / "job.log")
        child = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=10))
        controller = "pids" if kind == "v1 pids" else ""
        slot = _cgroup_of(leader, controller)
        assert slot.endswith("/slot-0")
        assert _cgroup_of(child, controller) == slot
        assert _cgroup_of(os.getpid(), controller) != slot, "the daemon stays outside"
        if kind == "v1 pids":
            assert (cgroups.base / "slot-0" / "pids.max").read_text().strip() == "20"
        assert cgroups.end(7) == 2
        wait_for(lambda: not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text(), 10)
        os.waitpid(leader, 0)
        wait_for(lambda: (cgroups.tick() or True) and not cgroups._dirty, timeout=10)
        # The emptied slot is the next job's.
        assert cgroups.acquire(8) == cgroups.base / "slot-0" / "cgroup.procs"
        cgroups.not_started(8)
    finally:
        cgroups.close()
    assert not cgroups.base.exists()


@pytest.mark.parametrize("kind", ["v1 pids", "v2"])
def test_slots_are_made_ahead_up_to_the_limit_and_removed_at_close(kind, tmp_path):
    """`prepare` makes the slots a daemon will need (at most AHEAD_AT_MOST) before any job asks; a job then
    takes one that exists, and `close` removes them all."""
    cgroups = _cgroups(kind, tmp_path)
    try:
        cgroups.prepare(5)
        assert len(cgroups._free) == 5
        assert sorted(p.name for p in cgroups.base.iterdir() if p.name.startswith("slot-")) == [
            f"slot-{n}" for n in range(5)
        ]
        procs = cgroups.acquire(1)
        assert procs.parent.name in {f"slot-{n}" for n in range(5)}
        cgroups.not_started(1)
        cgroups.prepare(10_000)
        assert cgroups._made == jobcgroups.AHEAD_AT_MOST
    finally:
        cgroups.close()
    assert not cgroups.base.exists()
