"""A cgroup per job, where the host lets the daemon make them: nothing a job starts outlives it, and a fork bomb
stops at the job's pids limit.

A process can leave its job's process group and session, and even clear its environment, but not its cgroup.
So where the daemon may create cgroups (as root, or in a cgroup delegated to it, as systemd does for a user
service with Delegate=yes) every job is born in a cgroup of its own: with cgroup v1 the spawning thread steps
into the job's cgroup for the moment of the spawn (a v1 cgroup holds threads, and a child is born where its
parent thread is), with v2 the child moves itself there before it execs the job (`/bin/sh -c 'echo 0 >
cgroup.procs && exec "$@"'`). Moving the leader after the spawn would be too late: a shell forks within a
millisecond. When the job ends, every process still in its cgroup is killed and the cgroup removed.

Which hierarchy: the cgroup v1 `pids` hierarchy (as on hybrid hosts like this VM's), with `pids.max`; else the
unified v2 hierarchy, with `pids.max` where the `pids` controller can be enabled below the daemon's cgroup, and
`cgroup.kill` either way. Where neither can be written, `None` is returned and the subreaper (`reaper`) is what
catches escaped processes. The container processes of docker and podman jobs live under their engine, not in
the job's cgroup; their engine's own limits and `RUNTIME stop` reach them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("hostpipe.jobcgroups")

_MOUNTS = Path("/sys/fs/cgroup")


def _own_cgroup(controller: str | None) -> str | None:
    """This process's cgroup path in the hierarchy of `controller` (None: the unified one)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller is None and controllers == "":
            return path
        if controller is not None and controller in controllers.split(","):
            return path
    return None


def _unified_root() -> Path | None:
    for candidate in (_MOUNTS / "unified", _MOUNTS):
        if (candidate / "cgroup.controllers").exists():
            return candidate
    return None


@dataclass
class JobCgroups:
    base: Path
    """The folder under which each job gets `job-ID`."""
    kind: str
    """"v1 pids", "v2 pids" or "v2" (no limit, but a kill switch and membership)."""
    pids_max: int

    @classmethod
    def detect(cls, store_id: str, pids_max: int) -> JobCgroups | None:
        name = f"hostpipe-{store_id}"
        own = _own_cgroup("pids")
        if own is not None and (_MOUNTS / "pids").is_dir():
            made = cls._make(_MOUNTS / "pids" / own.lstrip("/") / name)
            if made is not None:
                return cls(made, "v1 pids", pids_max)
        root, own = _unified_root(), _own_cgroup(None)
        if root is not None and own is not None:
            made = cls._make(root / own.lstrip("/") / name)
            if made is not None:
                limited = cls._enable_pids(made)
                return cls(made, "v2 pids" if limited else "v2", pids_max)
        return None

    @staticmethod
    def _make(path: Path) -> Path | None:
        try:
            path.mkdir(exist_ok=True)
        except OSError:
            return None
        return path if os.access(path / "cgroup.procs", os.W_OK) else None

    @staticmethod
    def _enable_pids(path: Path) -> bool:
        try:
            if "pids" not in (path / "cgroup.controllers").read_text().split():
                return False
            (path / "cgroup.subtree_control").write_text("+pids")
        except OSError:
            return False
        return True

    def _job(self, job_id: int) -> Path:
        return self.base / f"job-{job_id}"

    def prepare(self, job_id: int) -> Path:
        """Make the job's cgroup with its pids limit. Raises OSError."""
        path = self._job(job_id)
        path.mkdir(exist_ok=True)
        if self.pids_max and self.kind != "v2":
            (path / "pids.max").write_text(str(self.pids_max))
        return path

    @contextlib.contextmanager
    def spawning(self, job_id: int, argv: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        """Around a job's spawn: the argv to spawn, so that the child is born in (v1) or moves itself into (v2)
        the job's cgroup before the job's program runs. Raises OSError when the cgroup cannot be used."""
        path = self.prepare(job_id)
        if self.kind != "v1 pids":
            yield ("/bin/sh", "-c", 'echo 0 > "$0" && exec "$@"', str(path / "cgroup.procs"), *argv)
            return
        thread = str(threading.get_native_id())
        (path / "tasks").write_text(thread)
        try:
            yield argv
        finally:
            (self.base.parent / "tasks").write_text(thread)

    def members(self, job_id: int) -> list[int]:
        try:
            return [int(pid) for pid in (self._job(job_id) / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def end(self, job_id: int) -> int:
        """Kill every process left in the job's cgroup and remove it once empty; returns how many were left."""
        path = self._job(job_id)
        if not path.exists():
            return 0
        left = self.members(job_id)
        if left:
            if (path / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    (path / "cgroup.kill").write_text("1")
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            path.rmdir()
        return len(left)

    def leftovers(self) -> list[int]:
        """Jobs whose cgroups still exist (members were still dying when the job ended)."""
        found = []
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.base):
                if entry.is_dir() and entry.name.startswith("job-"):
                    with contextlib.suppress(ValueError):
                        found.append(int(entry.name[4:]))
        return found

    def close(self) -> None:
        """Remove the daemon's folder of job cgroups when no job's cgroup is left in it (a clean stop)."""
        for job_id in self.leftovers():
            self.end(job_id)
        with contextlib.suppress(OSError):
            self.base.rmdir()
