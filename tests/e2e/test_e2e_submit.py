"""The published sh client against a real podman and the real docker CLI: exit codes come back, and killing the
client (vk-cmd deleting the pod) stops the container, by the id hostpipe obtained for it."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.submit.support import read_until

from .support import KILL_GRACE, Hostpipe, Podman, wait_for

pytestmark = pytest.mark.e2e


def client(hostpipe: Hostpipe, *args: str) -> list[str]:
    return ["dash", str(hostpipe.pipe.parent / "bin" / "hostpipe-submit"), *args]


def published(hostpipe: Hostpipe) -> Path:
    path = hostpipe.pipe.parent / "bin" / "hostpipe-submit"
    wait_for(path.exists, 10, "the daemon to publish its client")
    return path


@pytest.mark.parametrize("runtime", ["podman", "docker"])
@pytest.mark.parametrize(
    ("script", "code"),
    [("exit 0", 0), ("exit 1", 1), ("sleep 300 & kill -KILL $!; wait $!", 137)],
    ids=["exit-0", "exit-1", "sigkill-137"],
)
def test_a_containers_exit_code_comes_back_to_the_client(
    runtime: str, script: str, code: int, request: pytest.FixtureRequest
) -> None:
    """The container's exit code is the client's: 0, 1, and 137 for a process killed by SIGKILL."""
    hostpipe: Hostpipe = request.getfixturevalue(f"{runtime}_hostpipe")
    published(hostpipe)
    # podman 4.3's API gives docker run --rm exit code 0 whatever the container did: no --rm for docker.
    remove = ["--rm"] if runtime == "podman" else []
    command = [runtime, "run", *remove, "localhost/busybox", "sh", "-c", f"echo hi; {script}"]
    result = subprocess.run(
        client(hostpipe, "--wait", "--", *command),
        capture_output=True,
        text=True,
        env=hostpipe.env,
        timeout=120,
        check=False,
    )

    assert result.returncode == code, (result.stdout, result.stderr)
    assert "hi" in result.stdout
    assert result.stderr == ""


def test_killing_the_client_stops_the_container(podman_hostpipe: Hostpipe, podman: Podman) -> None:
    """SIGTERM to a waiting client cancels its job, and the container goes too: hostpipe stops it by the id it
    obtained (its --cidfile), although PID 1 ignores the SIGTERM the CLI forwards."""
    process = subprocess.Popen(
        client(
            podman_hostpipe,
            "--wait",
            "--",
            "podman",
            "run",
            "--rm",
            "--name",
            "e2e-submitted",
            "localhost/busybox",
            "sh",
            "-c",
            "echo up; sleep 300",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=podman_hostpipe.env,
    )
    try:
        published(podman_hostpipe)
        read_until(process, "up", 60)
        wait_for(lambda: "e2e-submitted" in podman.running_names(), 30, "the container to run")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=KILL_GRACE + 40)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 128 + signal.SIGTERM, err
    wait_for(lambda: "e2e-submitted" not in podman.container_names(), KILL_GRACE + 20, "the container to go")
    assert time.monotonic() - started < KILL_GRACE + 30
    [job] = [j for j in podman_hostpipe.jobs() if "e2e-submitted" in j["line"]]
    assert job["state"] == "cancelled"
    assert job["container_id"]
