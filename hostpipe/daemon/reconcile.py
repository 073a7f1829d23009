"""Repairing the records a previous daemon left live (the decisions are `hostpipe.core.restart`'s).

What is left on the host is looked at here: whether a job's process is still the one the record names (same
pid and start time), and the container of a docker or podman job, found by the id hostpipe itself obtained
(the record's container id, or the cidfile hostpipe added). Jobs to stop get SIGTERM, then SIGKILL after the
grace; their containers get `RUNTIME stop` on that id, all at once, within the same grace. Every repair is
logged and recorded through the store. Jobs that never started are returned, to be decided and run again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import structlog

from hostpipe.core.containers import stop_command
from hostpipe.core.job import JobState
from hostpipe.core.policy import LoadedPolicy, job_env
from hostpipe.core.restart import Repair, decide_restart
from hostpipe.daemon import cidfiles
from hostpipe.daemon.executor import log_path_for
from hostpipe.daemon.procs import find_marked, process_start_time, signal_group
from hostpipe.daemon.records import JobRecord
from hostpipe.daemon.store import Store

log = structlog.get_logger("hostpipe.reconcile")


class Containers:
    """Finds and stops the containers of docker and podman jobs that a previous daemon left running."""

    def __init__(self, loaded: LoadedPolicy, environ: Mapping[str, str], cid_dir: Path, cwd: str) -> None:
        self._loaded = loaded
        self._environ = environ
        self._cid_dir = cid_dir
        self._cwd = cwd

    def container_of(self, record: JobRecord) -> str | None:
        """The id of the container the record's job created, as hostpipe obtained it."""
        cidfile = cidfiles.cidfile_for(self._cid_dir, record.id)
        found = record.container_id or cidfiles.read_container_id(cidfile)
        cidfiles.remove(cidfile)
        return found

    def _stop_target(self, record: JobRecord, grace: float) -> tuple[tuple[str, ...], dict[str, str], str] | None:
        runtime = self._loaded.policy.runtimes.get(record.runtime or "")
        executable = self._loaded.executables.get(record.runtime or "")
        if runtime is None or executable is None or runtime.kind not in ("docker", "podman"):
            return None
        container = self.container_of(record)
        if container is None:
            return None
        return stop_command(executable, grace, container), job_env(runtime, self._environ), container

    def stop(self, records: list[JobRecord], grace: float) -> None:
        """`RUNTIME stop` every container found, all at once, and wait for them (bounded)."""
        started = []
        for record in records:
            target = self._stop_target(record, grace)
            if target is None:
                continue
            command, env, container = target
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


def _alive(pid: int | None, pid_start: int | None) -> bool:
    return pid is not None and pid_start is not None and process_start_time(pid) == pid_start


def _groups(record: JobRecord, marked: dict[int, list[int]]) -> list[tuple[int, int | None]]:
    """(process group, start time of its leader) of what is left of the job."""
    if record.state is JobState.RUNNING:
        return [(record.pid or 0, record.pid_start)] if _alive(record.pid, record.pid_start) else []
    groups = set()
    for pid in marked.get(record.id, []):
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(pid))
    return [(group, process_start_time(group)) for group in groups]


def reconcile(
    live: list[JobRecord],
    store: Store,
    now: float,
    *,
    grace: float,
    max_age: float,
    logs_dir: Path,
    store_id: str,
    containers: Containers | None = None,
) -> list[JobRecord]:
    """End or stop every live record a previous daemon left; return the queued ones to run again."""
    requeue: list[JobRecord] = []
    to_stop: list[tuple[int, int | None]] = []
    stopped_jobs: list[JobRecord] = []
    starting = [r for r in live if r.state is JobState.QUEUED and r.start_attempt is not None]
    marked = find_marked(store_id) if starting else {}
    for record in live:
        groups = _groups(record, marked)
        decision = decide_restart(
            record.state,
            attempted=record.start_attempt is not None,
            submitted_at=record.submitted_at,
            now=now,
            max_age=max_age,
            process_alive=bool(groups),
            spawned=log_path_for(logs_dir, record.id, record.pod).exists(),
        )
        if decision.repair is Repair.REQUEUE:
            requeue.append(record)
            continue
        state = JobState.EXPIRED if decision.repair is Repair.EXPIRE else JobState.INTERRUPTED
        if decision.repair is Repair.STOP:
            for group, _ in groups:
                signal_group(group, signal.SIGTERM)
            to_stop.extend(groups)
        if record.state is JobState.RUNNING or record.start_attempt is not None:
            stopped_jobs.append(record)
        store.write("finished", (str(state), None, None, decision.reason, now, None, record.id))
        log.warning("job_repaired", job=record.id, pod=record.pod, was=str(record.state), reason=decision.reason)
    deadline = time.monotonic() + grace
    if containers is not None and stopped_jobs:
        # The CLIs got SIGTERM above; their containers are stopped meanwhile, within the same grace.
        containers.stop(stopped_jobs, grace)
    while to_stop and time.monotonic() < deadline:
        time.sleep(0.05)
        to_stop = [(group, start) for group, start in to_stop if _alive(group, start)]
    for group, _ in to_stop:
        signal_group(group, signal.SIGKILL)
    if requeue:
        log.info("jobs_requeued", count=len(requeue), note="queued when the daemon stopped; they run now")
    return requeue
