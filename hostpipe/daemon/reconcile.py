"""Repairing records that a previous daemon left live.

A record says queued or running only while a daemon watches it. At startup no job is watched yet, so each live
record is ended explicitly, and the repair is logged. A queued job is not started again: the previous daemon
may have started it just before it died, and running a container twice is worse than not at all. A running job
whose process still exists (same pid and same start time) is stopped the usual way, SIGTERM then SIGKILL. The
container of a docker or podman job lives under its engine, not in that process group, and may outlive the CLI
by far: it is stopped with `RUNTIME stop`, found by the line's --name or --cidfile or the cidfile hostpipe added.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import structlog

from hostpipe.core.containers import container_handle, stop_command
from hostpipe.core.job import JobState, Outcome
from hostpipe.core.policy import LoadedPolicy, job_env
from hostpipe.core.runtimes.base import ArgvRefused
from hostpipe.core.runtimes.registry import GRAMMARS
from hostpipe.daemon.cidfiles import cidfile_for, container_ref
from hostpipe.daemon.procs import process_start_time, signal_group
from hostpipe.daemon.store import JobRecord, Store

log = structlog.get_logger("hostpipe.reconcile")


class Containers:
    """Finds and stops the containers of docker and podman jobs that a previous daemon left running."""

    def __init__(self, loaded: LoadedPolicy, environ: Mapping[str, str], cid_dir: Path, cwd: str) -> None:
        self._loaded = loaded
        self._environ = environ
        self._cid_dir = cid_dir
        self._cwd = cwd

    def _container(self, record: JobRecord) -> tuple[str, str, dict[str, str]] | None:
        """(executable, container, environment) for the record's container, when it has one to stop."""
        runtime = self._loaded.policy.runtimes.get(record.runtime or "")
        executable = self._loaded.executables.get(record.runtime or "")
        if runtime is None or executable is None or not record.argv:
            return None
        try:
            invocation = GRAMMARS[runtime.kind].parse(tuple(record.argv[1:]))
        except ArgvRefused:
            return None
        handle = container_handle(runtime.kind, invocation, tuple(record.argv))
        if handle is None:
            return None
        cidfile = cidfile_for(handle, record.id, self._cid_dir, self._cwd)
        container = container_ref(handle, cidfile)
        if handle.adds_cidfile and cidfile is not None:
            cidfile.unlink(missing_ok=True)
        if container is None:
            return None
        return executable, container, job_env(runtime, self._environ)

    def stop(self, records: list[JobRecord], grace: float) -> None:
        """`RUNTIME stop` every container found, all at once, and wait for them (bounded)."""
        started = []
        for record in records:
            found = self._container(record)
            if found is None:
                continue
            executable, container, env = found
            command = stop_command(executable, grace, container)
            try:
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    env=env, cwd=self._cwd, start_new_session=True,
                )  # fmt: skip
            except OSError as error:
                log.warning("container_stop_failed", job=record.id, container=container, error=str(error))
                continue
            started.append((record, container, process))
        for record, container, process in started:
            try:
                code = process.wait(timeout=grace + 30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                code = process.wait()
            log.warning("container_repaired", job=record.id, pod=record.pod, container=container, exit_code=code)


def reconcile(store: Store, now: float, *, grace: float, containers: Containers | None = None) -> int:
    """End every live record; return how many were repaired."""
    live = store.live()
    survivors = []
    for record in live:
        if record.state is JobState.QUEUED:
            reason = "the daemon stopped before the job started; it was not started again"
        elif (
            record.pid is not None
            and record.pid_start is not None
            and (process_start_time(record.pid) == record.pid_start)
        ):
            signal_group(record.pid, signal.SIGTERM)
            survivors.append(record)
            reason = "the daemon stopped while the job ran; its process group was stopped at the next start"
        else:
            reason = "the daemon stopped while the job ran; its process had ended, its exit status is unknown"
        store.finished(record.id, Outcome(JobState.INTERRUPTED, reason=reason), ended_at=now)
        log.warning("job_repaired", job=record.id, pod=record.pod, was=str(record.state), reason=reason)
    deadline = time.monotonic() + grace
    if containers is not None:
        # The CLIs got SIGTERM above; their containers are stopped meanwhile, within the same grace.
        containers.stop([r for r in live if r.state is JobState.RUNNING], grace)
    while survivors and time.monotonic() < deadline:
        time.sleep(0.05)
        survivors = [r for r in survivors if process_start_time(r.pid or 0) == r.pid_start]
    for record in survivors:
        signal_group(record.pid or 0, signal.SIGKILL)
    return len(live)
