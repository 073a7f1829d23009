"""Running allowed commands: at most N at once, the rest queued, each bounded in time and stoppable.

A job is a process group: the command is started in a session of its own, so that stopping it (timeout,
cancel, shutdown) reaches everything it started, with SIGTERM first and SIGKILL after the policy's grace.
The daemon learns that a job ended from a pidfd (one descriptor per running job, no thread per child). When
the leader has exited but is not yet reaped, its pid still names the group and cannot be reused, so what the
command left behind in its group is killed then, and only then is the leader reaped.

Every step is recorded in order through the store: a job starts only once its start attempt is committed (so
a restart can tell a job that never started from one that may have), and its start and end follow. Processes
are started with posix_spawn on the loop's thread (it holds the interpreter lock either way); `RUNTIME stop`
runs on a small pool of threads of its own, so a slow engine never delays another pod's start.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import errno
import os
import resource
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from hostpipe.core.containers import stop_command, with_cidfile
from hostpipe.core.job import JobState, Outcome, StopCause, outcome_of_exit, transition
from hostpipe.core.policy import Allowed
from hostpipe.daemon import cidfiles
from hostpipe.daemon.commands import OwnChildren, run_command
from hostpipe.daemon.events import Events
from hostpipe.daemon.jobcgroups import JobCgroups
from hostpipe.daemon.procs import JOB_MARKER, job_marker, signal_group
from hostpipe.daemon.reaper import Reaper
from hostpipe.daemon.spawn import prelude, spawn
from hostpipe.daemon.store import Store
from hostpipe.daemon.supervise import Supervisor

log = structlog.get_logger("hostpipe.executor")

_OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE})
_FDS_PER_JOB = 3
"""Descriptors a running job holds at once at most: its pidfd, and briefly its log and container id file."""
_ORPHAN_GRACE = 2.0
"""Seconds after a job ended before its orphans are ended: an engine's monitor may be finishing its cleanup."""
_FDS_RESERVED = 64
"""Descriptors kept for the daemon itself: the pipe, the store, the control socket, logs, spawning."""


@dataclass
class Job:
    id: int
    allowed: Allowed
    pod: str | None
    client_id: str | None
    line: str = ""
    """The line as recorded, to write the record again into a store made anew."""
    submitted_at: float = 0.0
    state: JobState = JobState.QUEUED
    attempted: bool = False
    """Its start attempt is committed (with its record, or on its own before the spawn)."""
    pid: int | None = None
    """The process of the job's command: the leader of its own session and process group."""
    pidfd: int | None = None
    log_path: Path | None = None
    stop_cause: StopCause | None = None
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    logger: Any = None
    held: bool = False
    """A queue place is held for it while its record is being committed (see `Executor.hold_place`)."""
    spawning: bool = False
    """Between taking a slot and having a process: its start attempt is being committed."""
    cidfile: Path | None = None
    """Where the CLI writes the id of the container it creates (docker and podman run jobs)."""


def log_path_for(logs_dir: Path, job_id: int, pod: str | None) -> Path:
    """logs/<namespace>/<name>/<id>.log; jobs without a pod under logs/_/_/."""
    namespace, name = pod.split("/", 1) if pod else ("_", "_")
    return logs_dir / namespace / name / f"{job_id}.log"


def fd_capacity(soft_limit: int, wanted: int) -> int:
    """How many jobs can run at once within `soft_limit` descriptors, at most `wanted`."""
    return max(1, min(wanted, (soft_limit - _FDS_RESERVED) // _FDS_PER_JOB))


class Executor:
    def __init__(
        self,
        *,
        store: Store,
        logs_dir: Path,
        cid_dir: Path,
        max_concurrent: int,
        max_queued: int,
        kill_grace: float,
        cwd: str,
        clock: Callable[[], float] = time.time,
        stoppers: int = 4,
        job_nofile: tuple[int, int] | None = None,
        store_id: str = "",
        events: Events | None = None,
        cgroups: JobCgroups | None = None,
        reaper: Reaper | None = None,
    ) -> None:
        self._store = store
        self._logs_dir = logs_dir
        self._cid_dir = cid_dir
        self._wanted_concurrent = max_concurrent
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self.kill_grace = kill_grace
        self._cwd = cwd
        self._clock = clock
        self._store_id = store_id
        self._events = events or Events()
        self._cgroups = cgroups
        self._reaper = reaper
        self.own_children = OwnChildren()
        """Children that stopper threads wait for themselves; the reaper leaves them alone."""
        self._recently_ended: dict[int, float] = {}
        """Jobs that ended a moment ago: their orphans (an engine's monitor finishing up) are spared a while."""
        self._job_nofile = job_nofile
        """The descriptor limits the daemon was given before it raised its own: jobs get the soft one back, as
        systemd does (see spawn.prelude)."""
        self._queue: collections.deque[Job] = collections.deque()
        self._running: dict[int, Job] = {}
        self._reserved = 0
        """Slots promised to accepted lines whose records (with their start attempts) are being committed."""
        self._held = 0
        """Queue places held for accepted lines that will wait, while their records are being committed."""
        self._loop = asyncio.get_running_loop()
        self._accepting = True
        self._made_dirs: set[Path] = set()
        self._log_folders: dict[str | None, Path] = {}
        """Each pod's log folder, made into a Path once rather than at every job."""
        self._cid_dir_made = False
        self._fd_warning = False
        self._retry_timer: asyncio.TimerHandle | None = None
        self._stopper = concurrent.futures.ThreadPoolExecutor(max_workers=stoppers, thread_name_prefix="stop")
        self._supervisor = Supervisor(
            loop=self._loop,
            cid_dir=cid_dir,
            stopper=self._stopper,
            store_id=store_id,
            cwd=cwd,
            finish=self._followed_end,
            record_container=lambda job, container: self._store.write("container", (container, 1, job.id)),
            own=self.own_children,
        )
        self.fit_to_fds()

    def fit_to_fds(self) -> None:
        """Keep max_concurrent within the descriptors this process has; more lines wait in the queue."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        fitted = fd_capacity(soft, self._wanted_concurrent)
        if fitted < self._wanted_concurrent:
            log.warning(
                "max_concurrent_lowered",
                wanted=self._wanted_concurrent,
                running_at_most=fitted,
                nofile=soft,
                note="raise the hard limit of open files (LimitNOFILE=, ulimit -Hn) to run more jobs at once",
            )
        self.max_concurrent = fitted
        if self._cgroups is not None:
            self._cgroups.prepare(fitted)

    def set_limits(self, *, max_concurrent: int, max_queued: int, kill_grace: float) -> None:
        self._wanted_concurrent = max_concurrent
        self.max_queued = max_queued
        self.kill_grace = kill_grace
        self.fit_to_fds()
        self._start_waiting()

    # -- admission ----------------------------------------------------------------------------------------

    def free_slots(self) -> int:
        """How many more jobs can be accepted right now, running or queued."""
        if not self._accepting:
            return 0
        taken = len(self._running) + len(self._queue) + self._reserved + self._held
        return max(0, self.max_concurrent + self.max_queued - taken)

    def reserve_start(self) -> bool:
        """Promise a slot to a job whose record is about to be committed, when it can start at once."""
        if not self._accepting or self._queue or len(self._running) + self._reserved >= self.max_concurrent:
            return False
        self._reserved += 1
        return True

    def hold_place(self, job: Job) -> None:
        """Hold a queue place for an accepted job that cannot start at once, until its record is committed: a
        line read meanwhile must find it taken, or more jobs than `max_queued` would wait."""
        job.held = True
        self._held += 1

    @property
    def running_count(self) -> int:
        return len(self._running)

    @property
    def queued_count(self) -> int:
        return len(self._queue)

    def submit(self, job: Job) -> None:
        """Take a job whose record is committed: start it in its promised slot, or queue it."""
        job.logger = log.bind(job=job.id, pod=job.pod)
        folder = self._log_folders.get(job.pod)
        if folder is None:
            folder = self._log_folders[job.pod] = log_path_for(self._logs_dir, 0, job.pod).parent
        job.log_path = folder / f"{job.id}.log"
        if job.held:
            job.held = False
            self._held -= 1
        if job.attempted and self._reserved > 0:
            self._reserved -= 1
            if self._accepting:
                self._start(job)
                return
        self._queue.append(job)
        self._start_waiting()

    def _start_waiting(self) -> None:
        while self._accepting and self._queue and len(self._running) + self._reserved < self.max_concurrent:
            self._start(self._queue.popleft())

    # -- running --------------------------------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        """Take a slot; once the start attempt is committed, start the job's process."""
        job.spawning = True
        self._running[job.id] = job
        if job.attempted:
            self._launch(job)
            return
        committed = self._store.write("attempt", (self._clock(), job.id), wait=True)
        assert committed is not None
        committed.add_done_callback(lambda _: self._attempted(job))

    def _attempted(self, job: Job) -> None:
        job.attempted = True
        if job.state.terminal:
            return
        if job.stop_cause is not None:
            # Cancelled (or the daemon is stopping) while its attempt was being recorded: it never starts.
            self._running.pop(job.id, None)
            job.spawning = False
            self._finish(job, _never_started(job.stop_cause))
            self._start_waiting()
            return
        self._launch(job)

    def _launch(self, job: Job) -> None:
        """Start the job's process: its log is created by the child itself, after the fork (see `spawn`)."""
        job.spawning = False
        assert job.log_path is not None
        argv = job.allowed.argv
        if job.allowed.container is not None:
            if not self._cid_dir_made:
                self._cid_dir.mkdir(exist_ok=True, mode=0o700)
                self._cid_dir_made = True
            job.cidfile = cidfiles.cidfile_for(self._cid_dir, job.id)
            argv = with_cidfile(argv, job.allowed.container, str(job.cidfile))
        env = {**job.allowed.env, JOB_MARKER: job_marker(self._store_id, job.id)}
        try:
            if job.log_path.parent not in self._made_dirs:
                job.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._made_dirs.add(job.log_path.parent)
            procs = self._cgroups.acquire(job.id) if self._cgroups is not None else None
            nofile = self._job_nofile[0] if self._job_nofile is not None else None
            command = prelude(argv, cgroup_procs=procs, nofile=nofile)
            try:
                pid = spawn(command, env, job.log_path)
            except FileNotFoundError:
                if job.log_path.parent.is_dir():
                    raise
                # Retention removed the pod's emptied log folder since this daemon made it: make it again.
                job.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                pid = spawn(command, env, job.log_path)
            job.pidfd = os.pidfd_open(pid)
        except OSError as error:
            self._running.pop(job.id, None)
            if self._cgroups is not None:
                self._cgroups.not_started(job.id)
            if error.errno in _OUT_OF_FDS:
                self._out_of_fds(job, error)
                return
            reason = f"cannot start {job.allowed.argv[0]} with its log at {job.log_path}: {error.strerror or error}"
            self._finish(job, Outcome(JobState.FAILED, reason=reason))
            self._start_waiting()
            return
        job.pid = pid
        job.state = transition(job.state, JobState.RUNNING)
        # No start time is read to tell this process apart from a later one with the same pid: its marker
        # (HOSTPIPE_JOB in its environment) does that at a restart.
        self._store.write("started", (str(JobState.RUNNING), pid, None, self._clock(), str(job.log_path), job.id))
        self._loop.add_reader(job.pidfd, self._exited, job)
        job.logger.info("job_started", pid=pid, argv=list(job.allowed.argv), timeout=job.allowed.timeout)
        self._events.job_started(job)
        if job.stop_cause is not None:
            # Stopped (cancel, shutdown) while it was being started: stop it now that it has a process.
            cause, job.stop_cause = job.stop_cause, None
            self.stop(job, cause)
        elif job.allowed.timeout:
            job.timers.append(self._loop.call_later(job.allowed.timeout, self.stop, job, StopCause.TIMEOUT))

    def _out_of_fds(self, job: Job, error: OSError) -> None:
        """No descriptor left to start the job: it waits at the head of the queue until one is free."""
        if job.stop_cause is not None:
            self._finish(job, _never_started(job.stop_cause))
            return
        self._queue.appendleft(job)
        if not self._fd_warning:
            self._fd_warning = True
            log.warning("out_of_descriptors", error=str(error), running=len(self._running), queued=len(self._queue))
        if self._retry_timer is None:
            self._retry_timer = self._loop.call_later(1.0, self._retry_waiting)

    def _retry_waiting(self) -> None:
        self._retry_timer = None
        self._start_waiting()

    def _exited(self, job: Job) -> None:
        assert job.pid is not None and job.pidfd is not None
        self._loop.remove_reader(job.pidfd)
        os.close(job.pidfd)
        job.pidfd = None
        # The leader is a zombie: its pid still holds the group, so this reaches only what it left behind.
        signal_group(job.pid, signal.SIGKILL)
        _, status = os.waitpid(job.pid, 0)
        # Reaped: the pid may name another process from now on, so it is never signalled again.
        job.pid = None
        returncode = os.waitstatus_to_exitcode(status)
        handle = job.allowed.container
        if job.cidfile is not None and handle is not None:
            if handle.followed and self._supervisor.cli_exited(job, returncode):
                return  # the job goes on: its container runs, followed until it ends
            container = cidfiles.read_container_id(job.cidfile)
            if container is not None:
                self._store.write("container", (container, 0, job.id))
                self._supervisor.remove_later(job, container)
            cidfiles.remove(job.cidfile)
        detail = f" after {job.allowed.timeout:g}s" if job.stop_cause is StopCause.TIMEOUT else ""
        self._running.pop(job.id, None)
        self._fd_warning = False
        self._finish(job, outcome_of_exit(returncode, job.stop_cause, detail=detail))
        self._start_waiting()

    def _finish(self, job: Job, outcome: Outcome) -> None:
        for timer in job.timers:
            timer.cancel()
        job.timers.clear()
        job.state = transition(job.state, outcome.state)
        self._store.finished(job.id, outcome, self._clock())
        (job.logger or log).info(
            "job_finished",
            state=str(outcome.state),
            exit_code=outcome.exit_code,
            signal=outcome.signal,
            reason=outcome.reason,
        )
        job.ended.set()
        if job.log_path is not None:
            # It ran: whatever it left behind (in its cgroup now, its orphans at the next sweep) goes.
            self._recently_ended[job.id] = time.monotonic()
            if self._cgroups is not None:
                self._cgroups.end(job.id)
        self._events.job_finished(job, outcome)

    # -- stopping -------------------------------------------------------------------------------------------

    def _followed_end(self, job: Job, outcome: Outcome) -> None:
        """A followed container ended (or was given up on): the job ends with it and frees its slot."""
        self._running.pop(job.id, None)
        self._finish(job, outcome)
        self._start_waiting()

    def adopt(self, job: Job, container: str, *, started_at: float | None, since: float | None) -> None:
        """Follow a detached container a previous daemon started, as if this daemon had (restart, upgrade)."""
        job.logger = log.bind(job=job.id, pod=job.pod)
        job.log_path = log_path_for(self._logs_dir, job.id, job.pod)
        job.cidfile = cidfiles.cidfile_for(self._cid_dir, job.id)
        job.state = JobState.RUNNING
        job.attempted = True
        self._running[job.id] = job
        self._supervisor.follow(job, container, since=since)
        if job.allowed.timeout and not job.state.terminal:
            elapsed = (self._clock() - started_at) if started_at is not None else 0.0
            left = max(0.0, job.allowed.timeout - elapsed)
            job.timers.append(self._loop.call_later(left, self.stop, job, StopCause.TIMEOUT))

    def stop(self, job: Job, cause: StopCause) -> None:
        """SIGTERM to the job's group now, SIGKILL after the grace. A queued job simply never starts."""
        if self._supervisor.following(job):
            if job.stop_cause is None:
                self._supervisor.stop(job, cause, grace=self.kill_grace)
            return
        if job.spawning:
            job.stop_cause = job.stop_cause or cause
            return
        if job.state is JobState.QUEUED:
            with contextlib.suppress(ValueError):
                self._queue.remove(job)
            self._finish(job, _never_started(cause))
            return
        if job.state is not JobState.RUNNING or job.stop_cause is not None or job.pid is None:
            return
        job.stop_cause = cause
        job.logger.info("job_stopping", cause=str(cause), grace=self.kill_grace)
        if job.cidfile is not None:
            self._loop.run_in_executor(self._stopper, self._stop_container, job, self.kill_grace)
        signal_group(job.pid, signal.SIGTERM)
        job.timers.append(self._loop.call_later(self.kill_grace, self._kill, job))

    def _kill(self, job: Job) -> None:
        if job.pid is not None and job.state is JobState.RUNNING:
            job.logger.warning("job_killed", after=self.kill_grace)
            signal_group(job.pid, signal.SIGKILL)

    def _stop_container(self, job: Job, grace: float) -> None:
        """On a stopper thread: `RUNTIME stop` the container this job created, by the id its CLI wrote."""
        assert job.cidfile is not None
        container = cidfiles.read_container_id(job.cidfile)
        if container is None:
            job.logger.info("container_not_created", note="stopping the CLI stops the container's start")
            return
        command = stop_command(job.allowed.argv[0], grace, container)
        try:
            code, stderr = run_command(
                command, job.allowed.env, cwd=self._cwd, timeout=grace + 30, own=self.own_children
            )
        except OSError as error:
            job.logger.warning("container_stop_failed", container=container, error=str(error))
            return
        job.logger.info("container_stopped", container=container, exit_code=code, stderr=stderr or None)

    def kill_now(self, job: Job) -> None:
        """SIGKILL without waiting for the grace (a second stop signal to the daemon)."""
        if self._supervisor.following(job):
            self._supervisor.stop(job, job.stop_cause or StopCause.SHUTDOWN, grace=0)
        elif job.state is JobState.RUNNING and job.pid is not None:
            job.stop_cause = job.stop_cause or StopCause.SHUTDOWN
            signal_group(job.pid, signal.SIGKILL)

    def tick(self, also_known: Iterable[int] = ()) -> None:
        """Housekeeping: end the orphans of jobs that have ended, and what is left in their cgroups.

        `also_known`: other children of the daemon that someone waits for (the store writer).
        """
        now = time.monotonic()
        for job_id, ended in list(self._recently_ended.items()):
            if now - ended > _ORPHAN_GRACE:
                del self._recently_ended[job_id]
        live = {*self._running, *self._recently_ended}
        if self._reaper is not None:
            known = {j.pid for j in self._running.values() if j.pid is not None}
            known |= {*self._supervisor.pids(), *self.own_children.snapshot(), *also_known}
            for pid, job_id in self._reaper.sweep(known, live):
                log.warning("orphan_ended", pid=pid, job=job_id, note="it had left its job's process group")
        if self._cgroups is not None:
            self._cgroups.tick()

    extra_known: set[int] = set()

    def running_ids(self) -> list[int]:
        return list(self._running)

    def find(self, job_id: int) -> Job | None:
        job = self._running.get(job_id)
        if job is not None:
            return job
        return next((j for j in self._queue if j.id == job_id), None)

    def jobs_of(self, pod: str) -> list[Job]:
        return [j for j in (*self._running.values(), *self._queue) if j.pod == pod]

    def live_jobs(self) -> list[Job]:
        return [*self._running.values(), *self._queue]

    async def shutdown(self, *, grace_margin: float = 5.0, leave_detached: bool = False) -> None:
        """Stop accepting, cancel what waits, stop what runs, and wait (bounded) until every end is recorded.

        `leave_detached` (an upgrade): followed detached containers keep running and their records stay
        `running`; the next daemon adopts them.
        """
        self._accepting = False
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        for job in list(self._queue):
            self.stop(job, StopCause.SHUTDOWN)
        left_running: set[int] = set()
        if leave_detached:
            for job_id in self._supervisor.ids():
                job = self._running.pop(job_id)
                self._supervisor.leave(job)
                left_running.add(job_id)
                for timer in job.timers:
                    timer.cancel()
        running = list(self._running.values())
        for job in running:
            self.stop(job, StopCause.SHUTDOWN)
        if running:
            waits = [asyncio.ensure_future(job.ended.wait()) for job in running]
            # A followed container's end is read by its waiter once `RUNTIME stop` returns: allow for both.
            margin = grace_margin + (10.0 if any(self._supervisor.following(j) for j in running) else 0.0)
            _, pending = await asyncio.wait(waits, timeout=self.kill_grace + margin)
            for waiter in pending:
                waiter.cancel()
        for job in list(self._running.values()):
            # SIGKILL was sent and the process still has not ended (stuck in the kernel): record what is known.
            self._running.pop(job.id, None)
            self._supervisor.leave(job)
            if job.pidfd is not None:
                self._loop.remove_reader(job.pidfd)
                os.close(job.pidfd)
            if not job.state.terminal:
                self._finish(job, Outcome(JobState.INTERRUPTED, reason="did not end after SIGKILL at shutdown"))
        if self._reaper is not None:
            # Every job has ended: what left a job's process group goes now, not at a tick that will not come
            # (the engine monitors of containers left running for an upgrade stay).
            self._reaper.sweep({*self.own_children.snapshot()}, left_running)
        if self._cgroups is not None and not left_running:
            self._cgroups.close()
        self._stopper.shutdown(wait=False)


def _never_started(cause: StopCause) -> Outcome:
    reason = "daemon shut down before the job started" if cause is StopCause.SHUTDOWN else "cancelled"
    return Outcome(JobState.CANCELLED, reason=f"{reason} while queued")
