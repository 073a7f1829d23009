"""The real docker CLI, run by hostpipe from a pipe line, against podman's Docker-compatible API.

Lines here use `docker run` without --rm: podman 4.3's API reports exit code 0 for every attached `docker run
--rm` (fixed in podman 4.6), so --rm would hide the exit status. hostpipe removes such containers itself once
their job has ended.
"""

from __future__ import annotations

import pytest

from .support import Hostpipe, Podman, wait_for

pytestmark = pytest.mark.e2e


def test_docker_job_succeeds_with_container_output_in_its_log(docker_hostpipe: Hostpipe, podman: Podman) -> None:
    """`docker run localhost/busybox echo hi` ends succeeded, exit 0, `hi` in its log; its container is removed."""
    docker_hostpipe.submit("HOSTPIPE_POD=e2e/docker HOSTPIPE_ID=docker-hi docker run localhost/busybox echo hi")

    job = docker_hostpipe.wait_done("docker-hi")

    assert (job["state"], job["exit_code"], job["runtime"]) == ("succeeded", 0, "docker")
    assert "hi" in Hostpipe.log_text(job).splitlines()
    assert job["container_id"], "the record holds the id of the container the job created"
    wait_for(lambda: not podman.container_names(), 30, "hostpipe to remove the ended container")


def test_docker_job_reports_the_container_exit_status(docker_hostpipe: Hostpipe) -> None:
    """`docker run localhost/busybox sh -c 'exit 3'` through the API makes the job failed with exit_code 3."""
    docker_hostpipe.submit("HOSTPIPE_ID=docker-3 docker run localhost/busybox sh -c 'exit 3'")

    job = docker_hostpipe.wait_done("docker-3")

    assert (job["state"], job["exit_code"], job["signal"]) == ("failed", 3, None), Hostpipe.log_text(job)
