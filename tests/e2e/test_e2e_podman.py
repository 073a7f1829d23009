"""A line written into the pipe runs a real podman container; its outcome and output are recorded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .support import Hostpipe, Podman, wait_for

pytestmark = pytest.mark.e2e


def test_podman_job_succeeds_with_container_output_in_its_log(podman_hostpipe: Hostpipe) -> None:
    """`podman run --rm localhost/busybox echo hi` from the pipe ends succeeded, exit 0, with `hi` in its log."""
    podman_hostpipe.submit("HOSTPIPE_POD=e2e/echo HOSTPIPE_ID=echo-hi podman run --rm localhost/busybox echo hi")

    job = podman_hostpipe.wait_done("echo-hi")

    assert (job["state"], job["exit_code"], job["runtime"], job["pod"]) == ("succeeded", 0, "podman", "e2e/echo")
    assert Path(job["log"]) == podman_hostpipe.state_dir / "logs" / "e2e" / "echo" / f"{job['id']}.log"
    assert "hi" in Hostpipe.log_text(job).splitlines()


def test_container_exit_status_becomes_the_job_exit_code(podman_hostpipe: Hostpipe) -> None:
    """A container that exits 3 makes the job failed with exit_code 3 (podman passes the status through)."""
    podman_hostpipe.submit("HOSTPIPE_ID=exit-3 podman run --rm localhost/busybox sh -c 'exit 3'")

    job = podman_hostpipe.wait_done("exit-3")

    assert (job["state"], job["exit_code"], job["signal"]) == ("failed", 3, None)


def test_jobs_use_the_storage_named_by_the_policy_env(
    start_hostpipe: Callable[..., Hostpipe], podman_runtime: dict[str, object], podman: Podman
) -> None:
    """A named container started from the pipe appears in the podman storage the policy's env points at (a
    site that keeps containers: keep_containers = true)."""
    hostpipe = start_hostpipe({"podman": {**podman_runtime, "keep_containers": True}})
    hostpipe.submit("HOSTPIPE_ID=kept podman run --name e2e-kept localhost/busybox true")

    job = hostpipe.wait_done("kept")

    assert job["state"] == "succeeded", Hostpipe.log_text(job)
    assert podman.container_names() == {"e2e-kept"}


def test_a_container_the_engine_keeps_is_removed_once_its_job_ended(podman_hostpipe: Hostpipe, podman: Podman) -> None:
    """Without --rm and without keep_containers, hostpipe removes the ended container by its id."""
    podman_hostpipe.submit("HOSTPIPE_ID=gone podman run --name e2e-gone localhost/busybox true")

    job = podman_hostpipe.wait_done("gone")

    assert job["state"] == "succeeded" and job["container_id"], job
    wait_for(lambda: not podman.container_names(), 30, "hostpipe to remove the ended container")


REFUSED_LINES = [
    ("privileged", "podman run --privileged localhost/busybox true"),
    ("privileged-eq", "podman run --privileged=true localhost/busybox true"),
    ("bind-etc", "podman run -v /etc:/host localhost/busybox true"),
    ("volume-etc-ro", "podman run --volume=/etc:/host:ro localhost/busybox true"),
    ("mount-etc", "podman run --mount type=bind,src=/etc,dst=/host localhost/busybox true"),
    ("other-image", "podman run docker.io/library/busybox true"),
]


def test_refused_lines_never_reach_podman(
    start_hostpipe: Callable[..., Hostpipe], podman_runtime: dict[str, object], podman: Podman, tmp_path: Path
) -> None:
    """Refused lines end as refused without executing podman, while an allowed line in between does execute it."""
    calls = tmp_path / "podman-calls.log"
    wrapper = tmp_path / "podman-wrapper"
    # A stand-in in front of the real podman: it records each execution, then becomes podman.
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\nexec {podman.executable} "$@"\n')
    wrapper.chmod(0o755)
    hostpipe = start_hostpipe({"podman": {**podman_runtime, "executable": str(wrapper)}})

    for client_id, line in REFUSED_LINES[:3]:
        hostpipe.submit(f"HOSTPIPE_ID={client_id} {line}")
    hostpipe.submit("HOSTPIPE_ID=control podman run --name e2e-control localhost/busybox true")
    for client_id, line in REFUSED_LINES[3:]:
        hostpipe.submit(f"HOSTPIPE_ID={client_id} {line}")

    control = hostpipe.wait_done("control")
    refused = {client_id: hostpipe.wait_done(client_id) for client_id, _ in REFUSED_LINES}

    assert control["state"] == "succeeded", Hostpipe.log_text(control)
    for client_id, job in refused.items():
        assert job["state"] == "refused", client_id
        assert job["reason"], client_id
        assert (job["pid"], job["exit_code"], job["started_at"]) == (None, None, None), client_id
    # The executions are the allowed line, with the container-id file hostpipe adds before the image, and the
    # removal of its container by the id hostpipe obtained, once the job ended.
    cidfile = hostpipe.state_dir / "cid" / f"{control['id']}.cid"
    wait_for(lambda: len(calls.read_text().splitlines()) == 2, 30, "hostpipe to remove the ended container")
    assert calls.read_text().splitlines() == [
        f"run --name e2e-control --cidfile={cidfile} localhost/busybox true",
        f"rm --force {control['container_id']}",
    ]
