"""Repairing the records a previous daemon left live (the decisions are `hostpipe.core.restart`'s).

What is left on the host is looked at here: whether a job's process is still the one the record names (same
pid and start time), and the container of a docker or podman job, found by the id hostpipe itself obtained
(the record's container id, or the cidfile hostpipe added). Jobs to stop get SIGTERM, then SIGKILL after the
grace; their containers get `RUNTIME stop` on that id, all at once, within the same grace. Every repair is
logged and recorded through the store. Jobs that never started are returned, to be decided and run again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from hostpipe.core.containers import container_handle, container_id, stop_command
from hostpipe.core.job import JobState, Outcome, outcome_of_exit
from hostpipe.core.policy import LoadedPolicy, RuntimePolicy, job_env
from hostpipe.core.restart import Repair, decide_restart
from hostpipe.core.runtimes.base import ArgvRefused
from hostpipe.core.runtimes.registry import GRAMMARS
from hostpipe.daemon import cidfiles
from hostpipe.daemon.executor import log_path_for
from hostpipe.daemon.procs import find_marked, process_start_time, signal_group
from hostpipe.daemon.reaper import marker_of
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

    def _engine(self, record: JobRecord) -> tuple[str, dict[str, str], RuntimePolicy] | None:
        runtime = self._loaded.policy.runtimes.get(record.runtime or "")
        executable = self._loaded.executables.get(record.runtime or "")
        if runtime is None or executable is None or runtime.kind not in ("docker", "podman"):
            return None
        return executable, job_env(runtime, self._environ), runtime

    def _run(self, command: tuple[str, ...], env: dict[str, str], timeout: float = 30) -> str | None:
        try:
            result = subprocess.run(
                command, stdin=subprocess.DEVNULL, capture_output=True, env=env, cwd=self._cwd,
                timeout=timeout, start_new_session=True, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.decode(errors="replace") if result.returncode == 0 else None

    def state(self, record: JobRecord, container: str) -> tuple[str, int | None] | None:
        """The container's status and exit code as its engine reports them; None when it is gone."""
        engine = self._engine(record)
        if engine is None or container_id(container) is None:
            return None
        executable, env, _ = engine
        out = self._run((executable, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container), env)
        words = (out or "").split()
        if len(words) != 2:
            return None
        return words[0].lower(), int(words[1]) if words[1].lstrip("-").isdigit() else None

    def remove(self, record: JobRecord, container: str) -> None:
        """Remove an ended container hostpipe created, unless the line or the policy keeps it."""
        engine = self._engine(record)
        if engine is None or container_id(container) is None:
            return
        executable, env, runtime = engine
        argv = tuple(record.argv or ())
        try:
            handle = container_handle(runtime.kind, GRAMMARS[runtime.kind].parse(argv[1:]), argv)
        except ArgvRefused:
            handle = None
        if handle is None or not dataclasses.replace(handle, kept=runtime.keep_containers).removed_by_hostpipe:
            return
        self._run((executable, "rm", "--force", container), env)

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


Process = tuple[int, "int | str"]
"""A process left of a job, with what proves it is still that process: the job's id (its marker) or, for a
record of a store from before markers, the process's start time."""


def _alive(process: Process, store_id: str) -> bool:
    pid, proof = process
    if isinstance(proof, str):
        return process_start_time(pid) == int(proof)
    return marker_of(pid, store_id) == proof


def _left_of(record: JobRecord, marked: dict[int, list[int]]) -> list[Process]:
    """The processes left of the job: found by its marker (every job's environment carries it), or for a
    record written before markers existed, its leader if the pid still names the same process."""
    found: list[Process] = [(pid, record.id) for pid in marked.get(record.id, [])]
    old_record = record.state is JobState.RUNNING and record.pid is not None and record.pid_start is not None
    if not found and old_record and process_start_time(record.pid or 0) == record.pid_start:
        found.append((record.pid or 0, str(record.pid_start)))
    return found


def _signal(processes: list[Process], sig: signal.Signals) -> None:
    """`sig` to each process's group (what the job left in its group) and to the process itself."""
    for pid, _ in processes:
        with contextlib.suppress(OSError):
            signal_group(os.getpgid(pid), sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


@dataclass(frozen=True)
class Restart:
    """What the repair leaves to the starting daemon: jobs to run again, detached containers to follow."""

    requeue: list[JobRecord]
    adopt: list[tuple[JobRecord, str]]


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
) -> Restart:
    """End or stop every live record a previous daemon left; return what the new daemon takes over."""
    requeue: list[JobRecord] = []
    adopt: list[tuple[JobRecord, str]] = []
    to_stop: list[Process] = []
    stopped_jobs: list[JobRecord] = []
    # Every process that carries this store's job marker was started for a job of the previous daemon.
    marked = find_marked(store_id)
    for record in live:
        left = _left_of(record, marked)
        decision = decide_restart(
            record.state,
            attempted=record.start_attempt is not None,
            submitted_at=record.submitted_at,
            now=now,
            max_age=max_age,
            process_alive=bool(left),
            spawned=log_path_for(logs_dir, record.id, record.pod).exists(),
            detached_container=record.detached and record.container_id is not None and containers is not None,
        )
        if decision.repair is Repair.REQUEUE:
            requeue.append(record)
            continue
        if decision.repair is Repair.ADOPT:
            assert containers is not None and record.container_id is not None
            # What the previous daemon had following the container (its waiter, its log follower) goes; the
            # engine's monitor of the container (podman's conmon carries the job's marker too) stays.
            for pid in marked.get(record.id, []):
                if _is_follower(pid, record.container_id):
                    signal_group(pid, signal.SIGKILL)
            taken = _adopt_or_end(record, record.container_id, containers, store, now)
            if taken:
                adopt.append((record, record.container_id))
            continue
        state = JobState.EXPIRED if decision.repair is Repair.EXPIRE else JobState.INTERRUPTED
        if decision.repair is Repair.STOP:
            _signal(left, signal.SIGTERM)
            to_stop.extend(left)
        if record.state is JobState.RUNNING or record.start_attempt is not None:
            stopped_jobs.append(record)
        store.finished(record.id, Outcome(state, reason=decision.reason), now)
        log.warning("job_repaired", job=record.id, pod=record.pod, was=str(record.state), reason=decision.reason)
    deadline = time.monotonic() + grace
    if containers is not None and stopped_jobs:
        # The CLIs got SIGTERM above; their containers are stopped meanwhile, within the same grace.
        containers.stop(stopped_jobs, grace)
    while to_stop and time.monotonic() < deadline:
        time.sleep(0.05)
        to_stop = [process for process in to_stop if _alive(process, store_id)]
    _signal(to_stop, signal.SIGKILL)
    # What escaped its job's process group (setsid) before the daemon died, for any job but the containers
    # that are followed again (podman's conmon of such a container carries its job's marker): it goes now.
    adopted = {record.id for record, _ in adopt}
    for job_id, pids in marked.items():
        if job_id in adopted:
            continue
        _signal([(pid, job_id) for pid in pids], signal.SIGKILL)
    if requeue:
        log.info("jobs_requeued", count=len(requeue), note="queued when the daemon stopped; they run now")
    return Restart(requeue, adopt)


def _is_follower(pid: int, container: str) -> bool:
    """A `RUNTIME wait ID` or `RUNTIME logs ... ID` a daemon started to follow the container."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            words = cmdline.read().split(b"\0")
    except OSError:
        return False
    return len(words) > 2 and words[1] in (b"wait", b"logs") and container.encode() in words


def _adopt_or_end(record: JobRecord, container: str, containers: Containers, store: Store, now: float) -> bool:
    """True when the detached container still runs (to be followed); otherwise its end is recorded here."""
    found = containers.state(record, container)
    if found is not None and found[0] in ("running", "paused", "restarting"):
        log.info("container_adopted", job=record.id, pod=record.pod, container=container[:12])
        return True
    if found is None:
        reason = f"the daemon stopped while following the container {container[:12]}, which is gone since"
        outcome = Outcome(JobState.INTERRUPTED, reason=reason)
    else:
        ended = outcome_of_exit(found[1] if found[1] is not None else -1, None)
        reason = f"{ended.reason or 'exit code 0'}; the container ended while no daemon followed it"
        outcome = dataclasses.replace(ended, reason=reason)
        containers.remove(record, container)
    store.finished(record.id, outcome, now)
    log.warning("job_repaired", job=record.id, pod=record.pod, was="running", reason=outcome.reason)
    return False
