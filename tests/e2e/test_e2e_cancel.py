"""`hostpipe cancel` on a running container job: the job ends cancelled, and the container goes too.

The container is not in the job's process group: podman's conmon runs it in a session of its own (and behind
the Docker API, podman's service does). The CLI's signal proxy forwards SIGTERM to the container's PID 1, which
ends the container only if PID 1 acts on SIGTERM; so hostpipe also runs `RUNTIME stop` on the container, found
by the line's --name or by a --cidfile hostpipe adds. See the README section on cancelling container jobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from .support import KILL_GRACE, TERMINAL_STATES, Hostpipe, Podman, wait_for

pytestmark = pytest.mark.e2e

# `podman stop` waits 10 s for SIGTERM before SIGKILL: anything that stops the container within the
# job's own grace is well inside this bound.
CONTAINER_GONE_WITHIN = KILL_GRACE + 10


def cancel_when_running(hostpipe: Hostpipe, podman: Podman, client_id: str, container: str) -> dict[str, Any]:
    """Wait until the job's container runs, cancel the job, return its final record."""
    job = hostpipe.wait_job(client_id, {"running", *TERMINAL_STATES}, timeout=30)
    assert job["state"] == "running", (job, Hostpipe.log_text(job) if job["log"] else None)
    wait_for(lambda: container in podman.running_names(), 30, f"container {container} to run")

    cancelled = hostpipe.cli("cancel", str(job["id"]))

    assert cancelled.returncode == 0, cancelled.stderr
    return hostpipe.wait_done(client_id, timeout=KILL_GRACE + 15)


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_cancel_stops_a_container_whose_init_honours_sigterm(
    runtime: str, request: pytest.FixtureRequest, podman: Podman
) -> None:
    """The CLI forwards the job's SIGTERM to the container; a PID 1 that exits on it ends and removes the container."""
    hostpipe: Hostpipe = request.getfixturevalue(f"{runtime}_hostpipe")
    container = f"e2e-trap-{runtime}"
    script = "trap 'exit 143' TERM; sleep 300 & wait"
    hostpipe.submit(f'HOSTPIPE_ID=trap {runtime} run --rm --name {container} localhost/busybox sh -c "{script}"')

    started = time.monotonic()
    job = cancel_when_running(hostpipe, podman, "trap", container)
    wait_for(lambda: container not in podman.container_names(), CONTAINER_GONE_WITHIN, f"{container} to go")

    assert job["state"] == "cancelled", job
    # Well before SIGKILL would be needed: the container ended on SIGTERM.
    assert job["ended_at"] - job["started_at"] < 30
    assert time.monotonic() - started < KILL_GRACE + 30


def test_cancel_removes_a_container_whose_init_ignores_sigterm(podman_hostpipe: Hostpipe, podman: Podman) -> None:
    """Cancelling `podman run --rm --name X localhost/busybox sleep 300` ends the job and leaves no container."""
    podman_hostpipe.submit("HOSTPIPE_ID=sleeper podman run --rm --name e2e-sleeper localhost/busybox sleep 300")

    job = cancel_when_running(podman_hostpipe, podman, "sleeper", "e2e-sleeper")

    assert job["state"] == "cancelled", job
    wait_for(lambda: "e2e-sleeper" not in podman.container_names(), CONTAINER_GONE_WITHIN, "e2e-sleeper to go")


def test_cancelled_job_whose_container_ignores_sigterm_is_killed_after_the_grace(
    start_hostpipe: Callable[..., Hostpipe], podman_runtime: dict[str, Any], podman: Podman
) -> None:
    """When the forwarded SIGTERM is ignored, the CLI is SIGKILLed after kill_grace and the job still ends cancelled."""
    hostpipe = start_hostpipe({"podman": podman_runtime})
    hostpipe.submit("HOSTPIPE_ID=stubborn podman run --rm --name e2e-stubborn localhost/busybox sleep 300")

    job = cancel_when_running(hostpipe, podman, "stubborn", "e2e-stubborn")

    assert job["state"] == "cancelled", job
    assert job["ended_at"] - job["started_at"] >= KILL_GRACE


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_cancel_stops_an_unnamed_container_through_the_added_cidfile(
    runtime: str, request: pytest.FixtureRequest, podman: Podman
) -> None:
    """A line without --name still has its container stopped: hostpipe added a --cidfile and stops that id."""
    hostpipe: Hostpipe = request.getfixturevalue(f"{runtime}_hostpipe")
    before = podman.container_names()
    hostpipe.submit(f"HOSTPIPE_ID=anon {runtime} run localhost/busybox sleep 300")
    job = hostpipe.wait_job("anon", {"running", *TERMINAL_STATES}, timeout=30)
    assert job["state"] == "running", job
    new = wait_for(lambda: podman.running_names() - before or None, 30, "the unnamed container to run")

    cancelled = hostpipe.cli("cancel", str(job["id"]))
    assert cancelled.returncode == 0, cancelled.stderr
    done = hostpipe.wait_done("anon", timeout=KILL_GRACE + 15)

    assert done["state"] == "cancelled", done
    wait_for(lambda: not (podman.running_names() & new), CONTAINER_GONE_WITHIN, "the unnamed container to stop")
    assert not list((hostpipe.state_dir / "cid").glob("*.cid")), "the added cidfile is removed with the job"


def test_restart_after_a_crash_stops_the_orphaned_container(podman_hostpipe: Hostpipe, podman: Podman) -> None:
    """A daemon killed with SIGKILL leaves its job's container running; the daemon its holder starts next stops it."""
    before = podman.container_names()
    podman_hostpipe.submit("HOSTPIPE_ID=orphan podman run localhost/busybox sleep 300")
    job = podman_hostpipe.wait_job("orphan", {"running", *TERMINAL_STATES}, timeout=30)
    assert job["state"] == "running", job
    new = wait_for(lambda: podman.running_names() - before or None, 30, "the container to run")

    podman_hostpipe.kill_daemon()
    wait_for(lambda: not (podman.running_names() & new), CONTAINER_GONE_WITHIN, "the orphaned container to stop")
    (record,) = [r for r in podman_hostpipe.jobs() if r["client_id"] == "orphan"]
    assert record["state"] == "interrupted"
    wait_for(
        lambda: any(e["event"] == "container_repaired" for e in podman_hostpipe.log_events()), 10, "the repair event"
    )


@pytest.mark.parametrize("name", ["e2e-tenant-b", "--all"])
def test_a_job_never_stops_a_container_by_the_name_its_line_chose(
    name: str, podman_hostpipe: Hostpipe, podman: Podman
) -> None:
    """Another tenant's container, and every container (`--name=--all`), survive a job naming them ending."""
    victim = podman.run("run", "-d", "--name", "e2e-tenant-b", "localhost/busybox", "sleep", "300")
    assert victim.returncode == 0, victim.stderr
    podman_hostpipe.submit(f"HOSTPIPE_ID=named HOSTPIPE_TIMEOUT=2 podman run --name={name} localhost/busybox sleep 300")
    podman_hostpipe.submit("HOSTPIPE_ID=mine HOSTPIPE_TIMEOUT=2 podman run localhost/busybox sleep 300")

    named = podman_hostpipe.wait_done("named", timeout=KILL_GRACE + 30)
    mine = podman_hostpipe.wait_done("mine", timeout=KILL_GRACE + 30)

    assert named["state"] in ("failed", "timed_out"), named
    assert mine["state"] == "timed_out", mine
    assert "e2e-tenant-b" in podman.running_names(), "a job stopped a container it did not create"
