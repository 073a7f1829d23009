"""Detached containers are jobs: `run -d` followed to its end with real podman and the real docker CLI.

A `run -d` line's CLI returns as soon as the container runs; the job's record stays `running` while the
container does and ends with the container's own exit code and output. Timeout, cancel and a normal stop stop
the container by the id hostpipe obtained; a daemon killed with SIGKILL, or stopped for an upgrade (SIGUSR2),
leaves the container running and the next daemon adopts it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

import pytest

from .support import KILL_GRACE, TERMINAL_STATES, Hostpipe, Podman, wait_for

pytestmark = pytest.mark.e2e

IMAGE = "localhost/busybox"
SCRIPT = "echo started; sleep 8; echo finished; exit 4"


def _running_ids(podman: Podman) -> set[str]:
    result = podman.run("ps", "--no-trunc", "--format", "{{.ID}}")
    return set(result.stdout.split())


def _all_ids(podman: Podman) -> set[str]:
    result = podman.run("ps", "--all", "--no-trunc", "--format", "{{.ID}}")
    return set(result.stdout.split())


def _running_while_its_container_runs(hostpipe: Hostpipe, podman: Podman, client_id: str) -> dict[str, Any]:
    """The job's record says running, and its container (by the id the record holds) runs, after the CLI left."""

    def followed() -> dict[str, Any] | None:
        job = hostpipe.job(client_id)
        if job is not None and job["state"] in TERMINAL_STATES:
            raise AssertionError(f"the job ended while its container should run: {job}")
        return job if job is not None and job["container_id"] else None

    job = wait_for(followed, 30, f"job {client_id} to follow its container")
    assert job["state"] == "running" and job["detached"] is True, job
    assert job["container_id"] in _running_ids(podman)
    return job


@pytest.mark.parametrize("remove", ["", "--rm "], ids=["kept-by-engine", "rm"])
def test_podman_detached_job_runs_to_its_containers_end(remove: str, podman_hostpipe: Hostpipe, podman: Podman) -> None:
    """`podman run -d`: running while the container runs, then exit code 4 and its output in the job's log."""
    podman_hostpipe.submit(f"HOSTPIPE_ID=det podman run -d {remove}{IMAGE} sh -c '{SCRIPT}'")
    job = _running_while_its_container_runs(podman_hostpipe, podman, "det")
    done = podman_hostpipe.wait_done("det", timeout=30)
    assert (done["state"], done["exit_code"]) == ("failed", 4), done
    log = Hostpipe.log_text(done)
    assert job["container_id"] in log and "started" in log and "finished" in log
    # hostpipe removes what the engine does not: no container is left either way.
    wait_for(lambda: job["container_id"] not in _all_ids(podman), 30, "the container to be removed")


@pytest.mark.parametrize("remove", ["", "--rm "], ids=["kept-by-engine", "rm"])
def test_docker_cli_detached_job_gets_the_exit_code(remove: str, docker_hostpipe: Hostpipe, podman: Podman) -> None:
    """The docker CLI through podman 4.3's API: `docker run -d` (with or without --rm) ends with exit code 4."""
    docker_hostpipe.submit(f"HOSTPIPE_ID=ddet docker run -d {remove}{IMAGE} sh -c '{SCRIPT}'")
    job = _running_while_its_container_runs(docker_hostpipe, podman, "ddet")
    done = docker_hostpipe.wait_done("ddet", timeout=30)
    assert (done["state"], done["exit_code"]) == ("failed", 4), done
    assert "finished" in Hostpipe.log_text(done)
    wait_for(lambda: job["container_id"] not in _all_ids(podman), 30, "the container to be removed")


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_timeout_stops_a_detached_container(runtime: str, request: pytest.FixtureRequest, podman: Podman) -> None:
    """HOSTPIPE_TIMEOUT on a `run -d` job stops its container; the record says timed_out."""
    hostpipe: Hostpipe = request.getfixturevalue(f"{runtime}_hostpipe")
    hostpipe.submit(f"HOSTPIPE_ID=slow HOSTPIPE_TIMEOUT=4 {runtime} run -d {IMAGE} sleep 300")
    job = _running_while_its_container_runs(hostpipe, podman, "slow")
    done = hostpipe.wait_done("slow", timeout=4 + KILL_GRACE + 30)
    assert done["state"] == "timed_out", done
    wait_for(lambda: job["container_id"] not in _running_ids(podman), 10, "the container to stop")


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_cancel_stops_a_detached_container(runtime: str, request: pytest.FixtureRequest, podman: Podman) -> None:
    """`hostpipe cancel` of a `run -d` job stops its container by id; the record says cancelled."""
    hostpipe: Hostpipe = request.getfixturevalue(f"{runtime}_hostpipe")
    hostpipe.submit(f"HOSTPIPE_ID=svc {runtime} run -d --name e2e-svc-{runtime} {IMAGE} sleep 300")
    job = _running_while_its_container_runs(hostpipe, podman, "svc")
    cancelled = hostpipe.cli("cancel", str(job["id"]))
    assert cancelled.returncode == 0, cancelled.stderr
    done = hostpipe.wait_done("svc", timeout=KILL_GRACE + 30)
    assert done["state"] == "cancelled", done
    assert job["container_id"] not in _running_ids(podman)


def test_a_detached_job_holds_its_slot(
    start_hostpipe: Callable[..., Hostpipe], podman_runtime: dict[str, Any], podman: Podman
) -> None:
    """With max_concurrent 1, a second line waits while the first job's detached container runs."""
    hostpipe = start_hostpipe({"podman": podman_runtime}, max_concurrent=1)
    hostpipe.submit(f"HOSTPIPE_ID=first podman run -d {IMAGE} sleep 4")
    _running_while_its_container_runs(hostpipe, podman, "first")
    hostpipe.submit(f"HOSTPIPE_ID=second podman run {IMAGE} true")
    second = hostpipe.wait_job("second", {"queued", "running", *TERMINAL_STATES}, timeout=10)
    assert second["state"] == "queued", second
    first = hostpipe.wait_done("first", timeout=30)
    second = hostpipe.wait_done("second", timeout=30)
    assert first["state"] == second["state"] == "succeeded"
    assert second["started_at"] >= first["ended_at"]


def test_a_killed_daemon_leaves_the_container_and_the_next_one_adopts_it(
    podman_hostpipe: Hostpipe, podman: Podman
) -> None:
    """SIGKILL of the daemon: the container runs on, the restarted daemon follows it and records its exit 4."""
    podman_hostpipe.submit(f"HOSTPIPE_ID=adopt podman run -d {IMAGE} sh -c 'echo before; sleep 6; echo after; exit 4'")
    job = _running_while_its_container_runs(podman_hostpipe, podman, "adopt")
    podman_hostpipe.kill_daemon()
    assert job["container_id"] in _running_ids(podman), "a crash does not stop a detached container"
    wait_for(
        lambda: any(e["event"] == "container_adopted" for e in podman_hostpipe.log_events()), 10, "the adoption event"
    )
    done = podman_hostpipe.wait_done("adopt", timeout=40)
    assert (done["state"], done["exit_code"]) == ("failed", 4), done
    assert "after" in Hostpipe.log_text(done)


def test_an_upgrade_stop_leaves_detached_containers_running(podman_hostpipe: Hostpipe, podman: Podman) -> None:
    """SIGUSR2 stops hostpipe (exit 0) without stopping `run -d` containers; the next start adopts them."""
    podman_hostpipe.submit(f"HOSTPIPE_ID=long podman run -d {IMAGE} sh -c 'sleep 6; exit 4'")
    job = _running_while_its_container_runs(podman_hostpipe, podman, "long")
    assert podman_hostpipe.process is not None
    os.kill(podman_hostpipe.process.pid, signal.SIGUSR2)
    assert podman_hostpipe.process.wait(30) == 0
    assert job["container_id"] in _running_ids(podman)
    assert podman_hostpipe.job("long")["state"] == "running"  # type: ignore[index]
    podman_hostpipe.start()
    done = podman_hostpipe.wait_done("long", timeout=40)
    assert (done["state"], done["exit_code"]) == ("failed", 4), done


def test_restart_always_is_refused_with_a_reason(podman_hostpipe: Hostpipe) -> None:
    """A restart policy would keep the container out of hostpipe's hands: refused unless the site allows it."""
    podman_hostpipe.submit(f"HOSTPIPE_ID=forever podman run -d --restart=always {IMAGE} sleep 300")
    job = podman_hostpipe.wait_done("forever", timeout=20)
    assert (job["state"], job["rule"]) == ("refused", "restart-policy"), job
    assert "allow_restart" in job["reason"]


SAMPLES = {
    # JIRIAF's detached lines (tests/data/pipe-lines.txt), with the local image and a command it has.
    "ersap": (
        "docker",
        f"docker run -d --rm --name vd-ersap --network=host -e ERSAP_USER_DATA=/data --entrypoint=/bin/sleep {IMAGE} 8",
        {"allow_host_network": True},
    ),
    "exporter": (
        "docker",
        f"docker run -d --rm --net=host -v /proc:/host_proc:ro {IMAGE} sleep 8",
        {"allow_host_network": True, "read_only_roots": ["/proc"]},
    ),
    "podman-ersap": (
        "podman",
        f"podman run --name ersap -d --rm --network=host -e ERSAP_HOME=/ersap --entrypoint=/bin/sleep {IMAGE} 8",
        {"allow_host_network": True},
    ),
}


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_jiriaf_detached_lines_run_as_supervised_jobs(
    sample: str,
    request: pytest.FixtureRequest,
    start_hostpipe: Callable[..., Hostpipe],
    podman: Podman,
) -> None:
    """The sample `-d --rm` lines run under a policy allowing what they ask for, followed until they end."""
    runtime, line, relaxed = SAMPLES[sample]
    base = request.getfixturevalue(f"{runtime}_runtime")
    hostpipe = start_hostpipe({runtime: {**base, **relaxed}})
    hostpipe.submit(f"HOSTPIPE_ID={sample} {line}")
    _running_while_its_container_runs(hostpipe, podman, sample)
    done = hostpipe.wait_done(sample, timeout=30)
    assert (done["state"], done["exit_code"]) == ("succeeded", 0), done
