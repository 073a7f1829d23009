"""A cgroup per job, where the host lets the daemon make them: nothing a job starts outlives it, and a fork bomb
stops at the job's pids limit.

A process can leave its job's process group and session, and even clear its environment, but not its cgroup.
So where the daemon may create cgroups (as root, or in a cgroup delegated to it, as systemd does for a user
service with Delegate=yes) every job runs in a cgroup of its own: its child moves itself there before it execs
the job's program (`/bin/sh -c 'echo 0 > cgroup.procs && exec "$@"'`), so even a child the job forks at once is
inside; moving the leader from the daemon after the spawn would be too late (a shell forks within a
millisecond). The cgroups are slots, made once and reused: moving a task between cgroups and making one cost
the kernel a fraction of a millisecond each, which the daemon's loop must not pay per job; the child pays for
its own move. Slots are made ahead, up to `max_concurrent`, at start-up and at a reload (`prepare`): making
a cgroup costs the kernel some 40 µs when it is idle but 10 ms and more under load, which no job's start
should wait for. (They are made on the event loop's own thread: slots a helper thread made could not be
entered by jobs under a systemd user manager's delegated cgroup v2 tree, Permission denied.)
When the job ends, every process still in its cgroup is killed, and the slot is reused once empty.

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
from dataclasses import dataclass, field
from pathlib import Path

import structlog

log = structlog.get_logger("hostpipe.jobcgroups")

AHEAD_AT_MOST = 64
"""Slots made ahead at most; a daemon allowed more jobs at once makes the rest when they are first needed."""

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
    """The daemon's folder of job cgroups: `slot-N`, each used by one job at a time."""
    kind: str
    """"v1 pids", "v2 pids" or "v2" (no limit, but a kill switch and membership)."""
    pids_max: int
    _free: list[Path] = field(default_factory=list)
    _used: dict[int, Path] = field(default_factory=dict)
    _dirty: list[Path] = field(default_factory=list)
    """Slots whose job ended with members still dying; back to the free list once empty."""
    _made: int = 0

    @classmethod
    def detect(cls, store_id: str, pids_max: int) -> JobCgroups | None:
        name = f"hostpipe-{store_id}"
        found: JobCgroups | None = None
        own = _own_cgroup("pids")
        if own is not None and (_MOUNTS / "pids").is_dir():
            made = cls._make(_MOUNTS / "pids" / own.lstrip("/") / name)
            if made is not None:
                found = cls(made, "v1 pids", pids_max)
        if found is None:
            root, own = _unified_root(), _own_cgroup(None)
            if root is not None and own is not None:
                made = cls._make(root / own.lstrip("/") / name)
                if made is not None:
                    found = cls(made, "v2 pids" if cls._enable_pids(made) else "v2", pids_max)
        if found is not None:
            found._recover()
        return found

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

    def _recover(self) -> None:
        """Slots a previous daemon left: whatever still runs in them belonged to its jobs, and goes."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.base):
                if entry.is_dir() and entry.name.startswith("slot-"):
                    self._made += 1
                    self._dirty.append(Path(entry.path))
        self.tick()

    def acquire(self, job_id: int) -> Path:
        """The `cgroup.procs` of a free slot for the job, which its child writes itself into before it execs
        the job's program (see `spawn.prelude`). Raises OSError."""
        slot = self._free.pop() if self._free else self._new_slot()
        self._used[job_id] = slot
        return slot / "cgroup.procs"

    def prepare(self, count: int) -> None:
        """Make slots now until there are `count` (at most AHEAD_AT_MOST), so no job's start makes one."""
        while self._made < min(count, AHEAD_AT_MOST):
            try:
                slot = self._new_slot()
            except OSError as error:
                log.info("cgroup_slots_not_made_ahead", error=str(error))
                return
            self._free.append(slot)

    def _new_slot(self) -> Path:
        slot = self.base / f"slot-{self._made}"
        slot.mkdir(exist_ok=True)
        self._made += 1
        if self.pids_max and self.kind != "v2":
            (slot / "pids.max").write_text(str(self.pids_max))
        return slot

    def not_started(self, job_id: int) -> None:
        """The spawn failed: the slot is free again."""
        slot = self._used.pop(job_id, None)
        if slot is not None:
            self._free.append(slot)

    @staticmethod
    def _members(slot: Path) -> list[int]:
        # Read at every job's end: os.read on the path's text costs a seventh of Path.read_text.
        try:
            fd = os.open(f"{slot}/cgroup.procs", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return []
        try:
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
        except OSError:
            return []
        finally:
            os.close(fd)
        return [int(pid) for pid in b"".join(chunks).split()]

    def members(self, job_id: int) -> list[int]:
        slot = self._used.get(job_id)
        return self._members(slot) if slot is not None else []

    def end(self, job_id: int) -> int:
        """Kill every process left in the job's cgroup; the slot is reused once empty. Returns how many were left."""
        slot = self._used.pop(job_id, None)
        if slot is None:
            return 0
        left = self._kill(slot)
        (self._dirty if left else self._free).append(slot)
        return left

    def _kill(self, slot: Path) -> int:
        left = self._members(slot)
        if not left:
            return 0
        if (slot / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (slot / "cgroup.kill").write_text("1")
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return len(left)

    def tick(self) -> None:
        """Kill again what is still dying in ended jobs' slots; free the slots that are empty."""
        dirty, self._dirty = self._dirty, []
        for slot in dirty:
            (self._dirty if self._kill(slot) else self._free).append(slot)

    def close(self) -> None:
        """Remove the daemon's folder of job cgroups when no job is left in it (a clean stop)."""
        for job_id in list(self._used):
            self.end(job_id)
        self.tick()
        for slot in [*self._free, *self._dirty]:
            with contextlib.suppress(OSError):
                slot.rmdir()
        with contextlib.suppress(OSError):
            self.base.rmdir()
