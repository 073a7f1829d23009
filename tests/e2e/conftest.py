"""Fixtures for running hostpipe against a real podman and the real docker CLI, state in pytest's tmp folder.

The one exception is podman's runroot, which must stay short (see support.RUNROOT_MAX_CHARS) and so lives in
its own /tmp/hpe2e-* folder, removed with the rest at the end of the session.

Where podman cannot run (not installed, not root, `podman info` fails) every e2e test skips and says why;
with HOSTPIPE_E2E_REQUIRE=1 (for a CI that has run scripts/e2e-setup.sh) the same reasons fail the run instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest

from .support import (
    IMAGE,
    POLICY_SETTINGS,
    REPO,
    Hostpipe,
    Podman,
    busybox_rootfs_tar,
    docker_api_answers,
    is_static_elf,
    policy_toml,
    stop_process,
    wait_for,
)

REQUIRED = os.environ.get("HOSTPIPE_E2E_REQUIRE") == "1"


def unavailable(reason: str) -> NoReturn:
    if REQUIRED:
        pytest.fail(f"e2e environment required (HOSTPIPE_E2E_REQUIRE=1) but {reason}", pytrace=False)
    pytest.skip(reason)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A short name: the daemon's control socket and podman's API socket live below it (108-byte limit).
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def podman(e2e_root: Path) -> Iterator[Podman]:
    """A private podman (own config, vfs storage, per-boot dir) with localhost/busybox imported and working."""
    if os.geteuid() != 0:
        unavailable("needs root: podman runs rootful here (rootless needs subuids and a user session)")
    executable = shutil.which("podman")
    if executable is None:
        unavailable("podman is not installed (scripts/e2e-setup.sh installs podman, runc, busybox-static)")
    busybox = next((p for p in map(Path, ("/bin/busybox", "/usr/bin/busybox")) if p.is_file()), None)
    if busybox is None or not is_static_elf(busybox):
        unavailable("no statically linked /bin/busybox to build the test image from (apt: busybox-static)")

    runtime = Podman(e2e_root / "podman", Path(tempfile.mkdtemp(prefix="hpe2e-", dir="/tmp")), executable)
    runtime.configure()
    try:
        info = runtime.run("info", "--format", "{{.Host.OCIRuntime.Name}}")
        if info.returncode != 0:
            unavailable(f"`podman info` fails here: {_last_line(info.stderr)}")
        tar = busybox_rootfs_tar(busybox, e2e_root)
        imported = runtime.run("import", "--change", 'CMD ["/bin/sh"]', str(tar), IMAGE)
        tar.unlink()
        if imported.returncode != 0:
            unavailable(f"`podman import` of the busybox rootfs fails: {_last_line(imported.stderr)}")
        smoke = runtime.run("run", "--rm", IMAGE, "echo", "hi")
        if smoke.returncode != 0 or smoke.stdout.strip() != "hi":
            unavailable(f"podman cannot run a container here: {_last_line(smoke.stderr or smoke.stdout)}")
        yield runtime
    finally:
        runtime.destroy()


@pytest.fixture(scope="session")
def docker_host(podman: Podman, e2e_root: Path) -> Iterator[str]:
    """podman's Docker-compatible API on a unix socket, for the real docker CLI; stopped by pid at the end."""
    if shutil.which("docker") is None:
        unavailable("the docker CLI is not installed")
    sock = e2e_root / "podman.sock"
    service_log = (e2e_root / "podman-service.log").open("wb")
    service = subprocess.Popen(
        [podman.executable, "system", "service", "--time=0", f"unix://{sock}"],
        env=podman.env,
        stdin=subprocess.DEVNULL,
        stdout=service_log,
        stderr=service_log,
        start_new_session=True,
    )
    try:

        def answering() -> bool:
            if service.poll() is not None:
                unavailable(
                    f"`podman system service` exited with {service.returncode}: "
                    + _last_line((e2e_root / "podman-service.log").read_text(errors="replace"))
                )
            return docker_api_answers(sock)

        wait_for(answering, 30, f"podman's API to answer on {sock}")
        host = f"unix://{sock}"
        version = subprocess.run(
            ["docker", "--host", host, "version", "--format", "{{.Server.Version}}"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if version.returncode != 0:
            unavailable(f"the docker CLI cannot talk to podman's API: {_last_line(version.stderr)}")
        yield host
    finally:
        stop_process(service)
        service_log.close()


@pytest.fixture(autouse=True)
def _no_containers_left_behind(podman: Podman) -> Iterator[None]:
    """Each test starts from, and leaves, an empty container list (`docker run` without --rm leaves some)."""
    podman.remove_all_containers()
    yield
    podman.remove_all_containers()


@pytest.fixture
def podman_runtime(podman: Podman) -> dict[str, Any]:
    """The policy table that lets pipe lines run this podman with localhost images only."""
    return {"subcommands": ["run"], "images": ["localhost/*"], "env": podman.env_for_runtime}


@pytest.fixture
def docker_runtime(docker_host: str) -> dict[str, Any]:
    """The policy table that lets pipe lines run the docker CLI against podman's API."""
    return {"subcommands": ["run"], "images": ["localhost/*"], "env": {"DOCKER_HOST": docker_host}}


@pytest.fixture
def start_hostpipe(e2e_root: Path) -> Iterator[Callable[..., Hostpipe]]:
    """Start `hostpipe serve` with a policy of the given runtimes; every daemon started is stopped by pid."""
    if not (REPO / "hostpipe" / "cli" / "main.py").exists():
        unavailable("hostpipe's command line (hostpipe/cli/main.py) is not in this checkout")
    started: list[Hostpipe] = []

    def start(runtimes: Mapping[str, Mapping[str, Any]], **settings: Any) -> Hostpipe:
        folder = Path(tempfile.mkdtemp(prefix="hp", dir=e2e_root))
        daemon = Hostpipe(folder, policy_toml({**POLICY_SETTINGS, **settings}, runtimes))
        started.append(daemon)
        daemon.start()
        return daemon

    yield start
    statuses = {daemon.folder.name: daemon.stop() for daemon in started}
    # The daemon's own contract: SIGTERM stops it cleanly, whatever its jobs did.
    assert all(status == 0 for status in statuses.values()), f"hostpipe serve exit statuses: {statuses}"


@pytest.fixture
def podman_hostpipe(start_hostpipe: Callable[..., Hostpipe], podman_runtime: dict[str, Any]) -> Hostpipe:
    """A running hostpipe whose policy allows only this podman."""
    return start_hostpipe({"podman": podman_runtime})


@pytest.fixture
def docker_hostpipe(start_hostpipe: Callable[..., Hostpipe], docker_runtime: dict[str, Any]) -> Hostpipe:
    """A running hostpipe whose policy allows only the docker CLI, talking to podman's API."""
    return start_hostpipe({"docker": docker_runtime})
