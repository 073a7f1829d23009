"""What the end-to-end tests share: a private podman, a busybox image made on the spot, a running hostpipe.

Everything here drives real programs (podman, the docker CLI, `hostpipe serve`) through their ordinary
interfaces: command lines, the FIFO, `hostpipe ps --json`. Waits are polls with a deadline, never fixed sleeps.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/busybox:latest"
TERMINAL_STATES = frozenset({"succeeded", "failed", "timed_out", "cancelled", "refused", "interrupted"})

# Root here lacks CAP_SYS_RESOURCE (so podman's default ulimits fail), crun refuses the hybrid cgroup layout,
# and there is no systemd to manage cgroups or keep a journal: hence runc, cgroupfs and a file events log.
# netns = "none" keeps podman's own runs off the shared bridge network (and twice as fast); the Docker API
# path still creates bridged containers, which works. tmp_dir keeps per-boot state (exit files, locks, the
# events log) in the test folder too, so this podman shares nothing with any other podman on the machine.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = {tmp_dir}
"""

# vfs copies the image per container instead of mounting overlays: a few MB for busybox, and the storage
# folder holds no image mounts (only each container's /dev/shm tmpfs, which `podman rm` unmounts), so removing
# it after `podman system reset` cannot trip over a busy overlay.
STORAGE_CONF = """\
[storage]
driver = "vfs"
graphroot = {graphroot}
runroot = {runroot}
"""

# Short enough that a cancel test waits seconds, long enough that a stuck job cannot outlive the suite.
KILL_GRACE = 2.0
POLICY_SETTINGS: dict[str, Any] = {"max_concurrent": 8, "timeout": "2m", "kill_grace": KILL_GRACE}

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Call probe until it returns something other than None/False; fail naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def toml_value(value: Any) -> str:
    """TOML for the few shapes a policy file needs: strings, numbers, lists and inline tables of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string literal is a valid TOML basic string for the characters used here.
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def policy_toml(settings: Mapping[str, Any], runtimes: Mapping[str, Mapping[str, Any]]) -> str:
    lines = [f"{key} = {toml_value(value)}" for key, value in settings.items()]
    for name, table in runtimes.items():
        lines.append(f"\n[runtimes.{name}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"


# -- the image ---------------------------------------------------------------------------------------------


def is_static_elf(path: Path) -> bool:
    """True for a 64-bit little-endian ELF without a PT_INTERP segment (no dynamic loader needed)."""
    with path.open("rb") as f:
        header = f.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            return False
        (phoff,) = struct.unpack_from("<Q", header, 32)
        phentsize, phnum = struct.unpack_from("<HH", header, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    pt_interp = 3
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != pt_interp for i in range(phnum))


def busybox_rootfs_tar(busybox: Path, workdir: Path) -> Path:
    """A tarball of a minimal root filesystem: busybox, one symlink per applet, root in passwd/group."""
    rootfs = workdir / "rootfs"
    for folder in ("bin", "etc", "tmp", "proc", "sys", "dev", "root"):
        (rootfs / folder).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    applets = subprocess.run(
        [str(busybox), "--list"], check=True, capture_output=True, text=True, timeout=30
    ).stdout.split()
    for applet in applets:
        link = rootfs / "bin" / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    tar = workdir / "busybox-rootfs.tar"
    with tarfile.open(tar, "w") as archive:
        archive.add(rootfs, arcname=".")
    shutil.rmtree(rootfs)
    return tar


# -- podman ------------------------------------------------------------------------------------------------


# podman 4.3 behind its Docker API never answers `docker run`'s wait (condition=next-exit) when the runroot
# path is longer than 50 characters: the container exits, the CLI hangs. pytest's tmp folders are longer than
# that, so the runroot alone lives in a short folder of its own under /tmp.
RUNROOT_MAX_CHARS = 50


@dataclass
class Podman:
    """podman confined to its folders: its own configuration, storage, per-boot state and events log."""

    root: Path
    runroot: Path
    executable: str

    @property
    def conf(self) -> Path:
        return self.root / "containers.conf"

    @property
    def storage_conf(self) -> Path:
        return self.root / "storage.conf"

    @property
    def env_for_runtime(self) -> dict[str, str]:
        """The two variables a policy gives the podman runtime so that jobs use this podman's storage."""
        return {"CONTAINERS_CONF": str(self.conf), "CONTAINERS_STORAGE_CONF": str(self.storage_conf)}

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.env_for_runtime}

    def configure(self) -> None:
        assert len(str(self.runroot)) <= RUNROOT_MAX_CHARS, f"runroot {self.runroot} is too long for podman 4.3"
        self.root.mkdir(parents=True, exist_ok=True)
        storage = self.root / "storage"
        self.conf.write_text(CONTAINERS_CONF.format(tmp_dir=toml_value(str(self.root / "libpod-tmp"))))
        self.storage_conf.write_text(
            STORAGE_CONF.format(graphroot=toml_value(str(storage / "graph")), runroot=toml_value(str(self.runroot)))
        )

    def run(self, *args: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.executable, *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def container_names(self) -> set[str]:
        """Every container in this storage, running or not (`podman ps -a`)."""
        result = self.run("ps", "-a", "--format", "{{.Names}}", check=True)
        return set(result.stdout.split())

    def running_names(self) -> set[str]:
        """Containers that are running now (`podman ps`)."""
        result = self.run("ps", "--format", "{{.Names}}", check=True)
        return set(result.stdout.split())

    def remove_all_containers(self) -> None:
        self.run("rm", "--all", "--force", "--time", "0", timeout=120)

    def destroy(self) -> None:
        """Remove containers and storage; leave the folder alone if something is still mounted in it."""
        self.remove_all_containers()
        self.run("system", "reset", "--force", timeout=120)
        for folder in (self.root, self.runroot):
            for mountpoint in sorted(mounts_under(folder), key=len, reverse=True):
                subprocess.run(["umount", mountpoint], check=False, capture_output=True, timeout=30)
            if not mounts_under(folder):
                # Only once nothing is mounted below: rmtree would otherwise descend into the mount.
                shutil.rmtree(folder, ignore_errors=True)


def mounts_under(folder: Path) -> list[str]:
    prefix = str(folder.resolve()) + "/"
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            # Field 5 is the mount point, with spaces and the like written as octal escapes.
            point = line.split()[4].encode().decode("unicode_escape")
            if point.startswith(prefix):
                found.append(point)
    return found


def docker_api_answers(sock: Path) -> bool:
    """True when the Docker-compatible API on this unix socket answers GET /_ping with 200."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(2)
            conn.connect(str(sock))
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
            reply = conn.recv(256)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]


def stop_process(process: subprocess.Popen[Any], grace: float = 10) -> int:
    """SIGTERM by pid, SIGKILL after the grace; returns the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(grace)


# -- hostpipe ----------------------------------------------------------------------------------------------


def hostpipe_argv() -> list[str]:
    """Run the hostpipe of this checkout, whatever else is installed (the env puts REPO first on PYTHONPATH)."""
    if (REPO / "hostpipe" / "__main__.py").exists():
        return [sys.executable, "-m", "hostpipe"]
    return [sys.executable, "-m", "hostpipe.cli.main"]


def write_line(pipe: Path, line: str, timeout: float = 10) -> None:
    """Open the FIFO, write one newline-terminated line, close it: what `echo LINE > pipe` does."""
    data = (line + "\n").encode()

    def opened() -> int | None:
        try:
            # Non-blocking so that a daemon that is not reading fails the test instead of hanging it.
            return os.open(pipe, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            if error.errno in (errno.ENXIO, errno.ENOENT):
                return None
            raise

    fd = wait_for(opened, timeout, f"a reader on {pipe}")
    try:
        os.set_blocking(fd, True)
        written = os.write(fd, data)
        assert written == len(data)
    finally:
        os.close(fd)


@dataclass
class Hostpipe:
    """A `hostpipe serve` process with its own pipe, state folder and policy, and the CLI pointed at them."""

    folder: Path
    policy_text: str
    process: subprocess.Popen[bytes] | None = None
    _stderr: Any = field(default=None, repr=False)

    @property
    def pipe(self) -> Path:
        return self.folder / "pipe" / "vk-cmd"

    @property
    def state_dir(self) -> Path:
        return self.folder / "state"

    @property
    def policy(self) -> Path:
        return self.folder / "policy.toml"

    @property
    def home(self) -> Path:
        return self.folder / "home"

    @property
    def stderr_path(self) -> Path:
        return self.folder / "serve.stderr"

    @property
    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "USER", "TZ")}
        pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        return {
            **keep,
            "HOME": str(self.home),
            "XDG_STATE_HOME": str(self.home / ".local" / "state"),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "PYTHONPATH": pythonpath,
            "HOSTPIPE_PIPE": str(self.pipe),
            "HOSTPIPE_STATE_DIR": str(self.state_dir),
            "HOSTPIPE_POLICY": str(self.policy),
        }

    def start(self, ready_timeout: float = 20) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.pipe.parent.mkdir(parents=True, exist_ok=True)
        self.policy.write_text(self.policy_text)
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [
                *hostpipe_argv(),
                "serve",
                "--pipe",
                str(self.pipe),
                "--state-dir",
                str(self.state_dir),
                "--policy",
                str(self.policy),
                "--log-format",
                "json",
            ],
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=self._stderr,
        )

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"hostpipe serve exited with {self.process.returncode} before it was ready:\n"
                    + self.stderr_path.read_text(errors="replace")
                )
            return any(event.get("event") == "ready" for event in self.log_events())

        wait_for(ready, ready_timeout, "hostpipe serve to log 'ready'")

    def stop(self) -> int | None:
        if self.process is None:
            return None
        status = stop_process(self.process, grace=30)
        # Whatever happened to the holder, none of the daemons it started may outlive the test.
        for event in self.log_events():
            if event.get("event") in ("ready", "daemon_restarted"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(event["pid"]), signal.SIGKILL)
        if self._stderr is not None:
            self._stderr.close()
        return status

    def daemon_pid(self) -> int:
        """The pid of the daemon itself (the holder's child), from its latest `ready` event."""
        return int([e for e in self.log_events() if e.get("event") == "ready"][-1]["pid"])

    def kill_daemon(self, ready_timeout: float = 30) -> None:
        """SIGKILL the daemon, not its holder, and wait until the holder's new daemon is ready."""
        readies = sum(1 for e in self.log_events() if e.get("event") == "ready")
        os.kill(self.daemon_pid(), signal.SIGKILL)
        wait_for(
            lambda: sum(1 for e in self.log_events() if e.get("event") == "ready") > readies,
            ready_timeout,
            "the holder to start a new daemon",
        )

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for raw in self.stderr_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(raw)
                if isinstance(event, dict):
                    events.append(event)
        return events

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*hostpipe_argv(), *args],
            check=False,
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def submit(self, line: str) -> None:
        write_line(self.pipe, line)

    def jobs(self) -> list[dict[str, Any]]:
        result = self.cli("ps", "--json", "--all")
        assert result.returncode == 0, f"hostpipe ps --json failed: {result.stderr}"
        jobs = json.loads(result.stdout)
        assert isinstance(jobs, list)
        return jobs

    def job(self, client_id: str) -> dict[str, Any] | None:
        matches = [job for job in self.jobs() if job.get("client_id") == client_id]
        assert len(matches) <= 1, f"more than one job with client id {client_id}: {matches}"
        return matches[0] if matches else None

    def wait_job(self, client_id: str, states: Iterable[str], timeout: float) -> dict[str, Any]:
        wanted = frozenset(states)

        def reached() -> dict[str, Any] | None:
            job = self.job(client_id)
            return job if job is not None and job["state"] in wanted else None

        try:
            return wait_for(reached, timeout, f"job {client_id} to reach {sorted(wanted)}", interval=0.2)
        except AssertionError as error:
            raise AssertionError(f"{error}; last seen: {self.job(client_id)}") from None

    def wait_done(self, client_id: str, timeout: float = 60) -> dict[str, Any]:
        return self.wait_job(client_id, TERMINAL_STATES, timeout)

    @staticmethod
    def log_text(job: dict[str, Any]) -> str:
        assert job["log"], f"job {job['id']} has no log file"
        return Path(job["log"]).read_text(errors="replace")
