"""The daemon's lifecycle: startup, the main loop, shutdown.

Reading the pipe is the hot path and never waits on a job or on the disk: each readable event moves what the
pipe holds into the inbox (`inbox`), cuts it into lines (`hostpipe.core.framing`), decides every line, and
queues the batch's records with the inbox position they reach (`store`). Only once the writer process has
committed them are the accepted jobs handed to the executor. Housekeeping (the systemd watchdog, the state
folder's health, a paused intake) lives in one periodic tick. Signal handlers only resolve the stop future; a
second SIGINT or SIGTERM kills the jobs at once instead of waiting for the grace.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import gc
import json
import os
import pwd
import re
import resource
import secrets
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    import socket
    import subprocess

from hostpipe.core.evaluate import Memo, claimed_names, evaluate, line_text
from hostpipe.core.framing import Frame, Framer, Line, Overlong
from hostpipe.core.grammar import MAX_LINE_BYTES, Expansions
from hostpipe.core.job import JobState, Outcome, StopCause
from hostpipe.core.listen import ListenAddress
from hostpipe.core.policy import Allowed, LoadedPolicy, Refused
from hostpipe.core.request import Cancel, PipeControl
from hostpipe.daemon import cidfiles, systemd
from hostpipe.daemon.control import serve_control
from hostpipe.daemon.events import Events
from hostpipe.daemon.executor import Executor, Job
from hostpipe.daemon.exposure import guard
from hostpipe.daemon.fifo import (
    OpenPipe,
    PipeError,
    held_lock,
    held_pipe,
    inherited_pipe,
    open_pipe,
    pipe_state,
    set_aside,
)
from hostpipe.daemon.holder import HOLDER_SOCKET, hand_pipe_up
from hostpipe.daemon.host import RealHost
from hostpipe.daemon.inbox import MAX_UNCOMMITTED, Inbox, Position
from hostpipe.daemon.jobcgroups import JobCgroups
from hostpipe.daemon.locks import AlreadyServing, lock_state_dir
from hostpipe.daemon.logcap import LogCap
from hostpipe.daemon.looplag import LoopLag
from hostpipe.daemon.paths import cid_dir, control_socket
from hostpipe.daemon.policyfile import BUILTIN, PolicyError, load_policy
from hostpipe.daemon.reaper import Reaper, become_subreaper
from hostpipe.daemon.reconcile import Containers, reconcile
from hostpipe.daemon.records import JobRecord, Reader
from hostpipe.daemon.refusals import RefusalLimit
from hostpipe.daemon.replies import Replies
from hostpipe.daemon.retention import Retention
from hostpipe.daemon.status import ServiceStatus
from hostpipe.daemon.store import NewJob, Store
from hostpipe.daemon.writer import JOB_COLUMNS

log = structlog.get_logger("hostpipe.server")

_DECIDE_BUDGET = 2048
"""Lines decided per loop round; the rest wait in memory (and in the inbox) for the next round."""
_TICK = 1.0
_RELOAD_QUIET = 1.0
"""Seconds the policy file must stay unchanged before a change is loaded: a file written in several steps
(successive appends, an editor's save) is read once it is whole."""
_INBOX_KEY = "inbox"
_LOG_NAME = re.compile(r"(\d+)\.log")


@dataclass(frozen=True)
class ServeConfig:
    pipe: Path
    state_dir: Path
    policy: Path | None
    policy_required: bool = False
    """An explicitly named policy file must exist; the default location may be absent."""
    max_concurrent: int | None = None
    pipe_mode: int = 0o600
    folder_mode: int = 0o700
    metrics_textfile: Path | None = None
    metrics_address: ListenAddress | None = None


def _identity() -> tuple[str, str]:
    entry = pwd.getpwuid(os.geteuid())
    return os.environ.get("HOME") or entry.pw_dir, os.environ.get("USER") or entry.pw_name


def raise_fd_limit() -> tuple[int, int] | None:
    """Raise the soft limit of open files to the hard limit; return the original limits for the jobs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= hard:
        return None
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return soft, hard
    return None


def log_id_floor(logs_dir: Path) -> int:
    """One past the highest job id among the log files, so a new store never reuses an old log's name."""
    highest = 0
    with contextlib.suppress(OSError):
        for namespace in os.scandir(logs_dir):
            if not namespace.is_dir(follow_symlinks=False):
                continue
            for name in os.scandir(namespace.path):
                if not name.is_dir(follow_symlinks=False):
                    continue
                for entry in os.scandir(name.path):
                    match = _LOG_NAME.fullmatch(entry.name)
                    if match:
                        highest = max(highest, int(match.group(1)))
    return highest + 1


def _inbox_position(meta: dict[str, Any]) -> Position | None:
    value = meta.get(_INBOX_KEY)
    if not isinstance(value, str) or ":" not in value:
        return None
    generation, offset = value.split(":", 1)
    return Position(int(generation), int(offset))


class Server:
    def __init__(
        self,
        config: ServeConfig,
        environ: dict[str, str] | None = None,
        *,
        writer: tuple[subprocess.Popen[bytes], socket.socket] | None = None,
    ) -> None:
        """`writer`: the store's writer, started before this module was imported (`writerproc`)."""
        self.config = config
        self._writer = writer
        self.environ = dict(os.environ if environ is None else environ)
        home, user = _identity()
        self.expansions = Expansions(home=home, user=user)
        self.host = RealHost(home=home)
        self.loaded: LoadedPolicy
        self.store: Store
        self.executor: Executor
        self.inbox: Inbox
        self.pipe: OpenPipe | None = None
        self.framer = Framer(MAX_LINE_BYTES)
        self._stop: asyncio.Future[str]
        self._signals = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._control: asyncio.AbstractServer | None = None
        self._watcher: Any = None
        self._stopping = False
        self._leave_detached = False
        self._lock_fd: int | None = None
        self._reading = False
        self._frames: collections.deque[Frame] = collections.deque()
        self._deciding: asyncio.Handle | None = None
        self._intake_error: str | None = None
        self._committed_offset = 0
        """Inbox offset (current generation) up to which records are committed."""
        self._in_flight_inserts: set[asyncio.Future[list[int]]] = set()
        self.refusals: RefusalLimit
        self.retention: Retention
        self._reload_timer: asyncio.TimerHandle | None = None
        self._pipe_problem: str | None = None
        self._state_dir_id: tuple[int, int] | None = None
        self._state_dir_lost = False
        self.started_at = time.time()
        self.events = Events()
        self.memo = Memo()
        """Refusals of lines that needed nothing from the host, per policy (hostpipe.core.evaluate.Memo)."""
        self.lag = LoopLag()
        """How late the loop runs (hostpipe.daemon.looplag); `stats` on the control socket reports it."""
        """Listeners to lines and jobs (metrics, replies to pods); add them before `startup`."""
        # -- replies to pods (hostpipe.daemon.replies): admits reply keys, acts on control lines, writes replies
        self.replies = Replies(retention=lambda: self.loaded.policy.retention)
        self.events.add(self.replies)
        if config.metrics_textfile is not None or config.metrics_address is not None:
            from hostpipe.daemon.metrics import Metrics  # noqa: PLC0415 - prometheus_client only when asked for

            self.events.add(Metrics(self))

    # -- table of contents ----------------------------------------------------------------------------------

    async def run(self) -> None:
        await self.startup()
        try:
            await self.main_loop()
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop = loop.create_future()
        # Jobs run in the daemon user's HOME, where relative paths in lines point; they inherit it from the
        # daemon, so every path the daemon itself uses is made absolute first.
        self.config = dataclasses.replace(
            self.config,
            pipe=self.config.pipe.absolute(),
            state_dir=self.config.state_dir.absolute(),
            policy=self.config.policy.absolute() if self.config.policy is not None else None,
        )
        os.chdir(self.expansions.home)
        self.loaded = self._guarded(load_policy(self.config.policy, self.environ, required=self.config.policy_required))
        self._warn_missing_runtimes()
        state_dir = self.config.state_dir
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_fd = held_lock(self.environ)
        if self._lock_fd is None:
            self._lock_fd = lock_state_dir(state_dir)
        self._state_dir_id = self._identify_state_dir()
        job_nofile = raise_fd_limit()
        writer, self._writer = self._writer, None
        self.store = Store(state_dir, on_health=self._on_store_health, on_fresh=self._live_rows, started=writer)
        hello = await self.store.open()
        if hello.fresh:
            self.store.next_id = max(self.store.next_id, log_id_floor(state_dir / "logs"))
        store_id = hello.meta.get("store_id")
        if not isinstance(store_id, str):
            # Marks every job's processes (HOSTPIPE_JOB=STORE:ID), so a restart can find them.
            store_id = secrets.token_hex(8)
            self.store.write("meta", ("store_id", store_id))
        reader = Reader(state_dir)
        try:
            live = reader.live()
        finally:
            reader.close()
        policy = self.loaded.policy
        containers = Containers(self.loaded, self.environ, cid_dir(state_dir), self.expansions.home)
        restart = reconcile(
            live,
            self.store,
            time.time(),
            grace=policy.kill_grace,
            max_age=policy.requeue_max_age,
            logs_dir=state_dir / "logs",
            store_id=store_id,
            containers=containers,
        )
        cgroups = JobCgroups.detect(store_id, policy.max_job_pids) if policy.job_cgroups else None
        subreaper = become_subreaper()
        log.info(
            "job_isolation",
            cgroups=cgroups.kind if cgroups is not None else None,
            pids_max=policy.max_job_pids if cgroups is not None and cgroups.kind != "v2" else None,
            subreaper=subreaper,
        )
        self.executor = Executor(
            store=self.store,
            logs_dir=state_dir / "logs",
            cid_dir=cid_dir(state_dir),
            max_concurrent=self.config.max_concurrent or policy.max_concurrent,
            max_queued=policy.max_queued,
            kill_grace=policy.kill_grace,
            cwd=self.expansions.home,
            job_nofile=job_nofile,
            store_id=store_id,
            events=self.events,
            cgroups=cgroups,
            reaper=Reaper(store_id) if subreaper else None,
        )
        self._growth()
        # systemd's STATUS= line (`systemctl --user status hostpipe`), kept current from the tick.
        self.events.add(
            ServiceStatus(
                running=lambda: self.executor.running_count,
                queued=lambda: self.executor.queued_count,
                store_problem=lambda: self.store.degraded,
            )
        )
        self._control = await serve_control(control_socket(state_dir), self._on_control)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self.reload_policy, "SIGHUP")
        self.pipe = held_pipe(self.config.pipe, self.environ) or inherited_pipe(self.config.pipe)
        if self.pipe is None:
            self.pipe = open_pipe(self.config.pipe, mode=self.config.pipe_mode, folder_mode=self.config.folder_mode)
            # Standalone, the holder keeps the pipe (and the lines in it) should this daemon die.
            hand_pipe_up(self.pipe.fd, self.environ)
        self._watch_holder(loop)
        # Replies: before any line or requeued job, so that every job with a reply key finds its reply.
        self.replies.open(self.config.pipe.parent, self.config.pipe.name, state_dir, self.executor, live)
        self.inbox = Inbox(state_dir)
        left = self.inbox.recover(_inbox_position(hello.meta))
        self._requeue(restart.requeue)
        self._adopt(restart.adopt, containers)
        # Container-id files of jobs no daemon follows any more would make a CLI refuse to start (the file
        # exists) when a later store gives out the same id; each job's file is made afresh by its CLI.
        cidfiles.remove_all_but(cid_dir(state_dir), {record.id for record, _ in restart.adopt})
        if left:
            # Lines a previous daemon took from the pipe but did not record: recorded (and run) now. Beside a
            # new store, the inbox belonged to a store that is gone, which may have recorded (and run) them:
            # they are recorded, and not run.
            log.warning("inbox_recovered", bytes=len(left), store_replaced=hello.fresh)
            frames = Framer(MAX_LINE_BYTES).feed(left, emptied=True)
            self._handle(frames, Position(self.inbox.generation, 0), replaced_store=hello.fresh)
        self._start_reading()
        self._tasks.append(asyncio.create_task(self._tick()))
        self.lag.start()
        log.info(
            "ready",
            pipe=str(self.pipe.path),
            inherited=self.pipe.inherited,
            state_dir=str(state_dir),
            policy=self.loaded.source,
            max_concurrent=self.executor.max_concurrent,
            pid=os.getpid(),
        )
        systemd.notify(f"READY=1\nSTATUS=reading {self.pipe.path}")
        # Watching the policy file is not needed to read the pipe; it starts once the daemon is ready.
        self._start_watcher()
        # Everything made so far (modules, schemas, tables) lives as long as the daemon: keep the collector
        # from walking it again on every collection while lines stream in.
        gc.freeze()

    async def main_loop(self) -> None:
        reason = await self._stop
        log.info("stopping", reason=reason)

    async def shutdown(self) -> None:
        systemd.notify("STOPPING=1")
        self._stopping = True
        self._stop_reading()
        if self.pipe is not None and not self.pipe.inherited:
            # No service manager keeps this pipe once the daemon is gone: lines still in it are recorded
            # (refused: the daemon is stopping) rather than lost unseen. Under socket activation they stay in
            # the pipe, and the next start records them.
            while self._take():
                pass
        if self._deciding is not None:
            self._deciding.cancel()
        while self._frames:
            self._decide_frames()
        if self._deciding is not None:
            self._deciding.cancel()
        if self._in_flight_inserts:
            # Lines taken before the stop: their jobs are handed to the executor (which cancels them) once
            # committed, so every one ends with a final state.
            await asyncio.wait(self._in_flight_inserts, timeout=5)
        for task in self._tasks:
            task.cancel()
        self.lag.stop()
        self.retention.stop()
        self.refusals.close()
        if self._reload_timer is not None:
            self._reload_timer.cancel()
        if self._watcher is not None:
            self._watcher.stop()
        if self._control is not None:
            self._control.close()
        await self.executor.shutdown(leave_detached=self._leave_detached)
        self.replies.close()
        with contextlib.suppress(FileNotFoundError):
            control_socket(self.config.state_dir).unlink()
        left = await self.store.close(timeout=10)
        if left:
            log.error(
                "records_not_written",
                count=left,
                note="the store could not be written before the daemon stopped; the next start repairs the records",
            )
        if self.pipe is not None:
            self.pipe.close()
        if not left and not self.framer.pending and self._committed_offset == self.inbox.end:
            # Everything taken from the pipe is recorded: the inbox holds nothing the next start needs.
            self.inbox.discard()
        else:
            self.inbox.close()
        log.info("stopped")

    # -- the pipe -------------------------------------------------------------------------------------------

    def _start_reading(self) -> None:
        if not self._reading and self.pipe is not None and not self._stopping:
            asyncio.get_running_loop().add_reader(self.pipe.fd, self._on_readable)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading and self.pipe is not None:
            asyncio.get_running_loop().remove_reader(self.pipe.fd)
            self._reading = False

    def _on_readable(self) -> None:
        self.lag.busy()
        self._take()

    def _take(self) -> int:
        """Move everything the pipe holds into the inbox and cut it into frames, to be decided in batches.

        Everything the pipe holds at one moment ends where a whole write ended, so a line is never split
        between two takes, and bytes without a newline at the end are a write of their own (see framing).
        """
        assert self.pipe is not None
        available = self.inbox.available(self.pipe.fd)
        if not available:
            return 0
        uncommitted = self.inbox.end - self._committed_offset
        count = available
        if not self._stopping and available > MAX_UNCOMMITTED - uncommitted:
            if uncommitted:
                # The store is behind: leave the lines in the pipe until there is room to take all of them.
                self._stop_reading()
                return 0
            count = MAX_UNCOMMITTED  # a pipe larger than the inbox may hold: take what fits, the rest follows
        try:
            data = self.inbox.take(self.pipe.fd, count)
        except OSError as error:
            self._intake_failed(error)
            return 0
        if self._intake_error is not None:
            log.info("intake_resumed", after=self._intake_error)
            self._intake_error = None
        if not data:
            return 0
        self._frames.extend(self.framer.feed(data, emptied=len(data) == available))
        if self._deciding is None:
            self._decide_frames()
        return len(data)

    def _decide_frames(self) -> None:
        """Decide up to a budget of frames now and the rest in later rounds, so a flood of lines cannot hold
        up job bookkeeping (exits, timeouts, spawns) for longer than one such batch takes to decide."""
        self._deciding = None
        if not self._frames:
            return
        batch = [self._frames.popleft() for _ in range(min(_DECIDE_BUDGET, len(self._frames)))]
        self._handle(batch, self.inbox.position(batch[-1].end))
        if self._frames:
            self._deciding = asyncio.get_running_loop().call_soon(self._decide_frames)

    def _intake_failed(self, error: OSError) -> None:
        text = f"{error.strerror or error} ({self.config.state_dir})"
        if self._intake_error != text:
            log.error("intake_paused", error=text, note="lines stay in the pipe; taking them is retried every second")
        self._intake_error = text
        self._stop_reading()

    def _handle(self, frames: list[Frame], position: Position, *, replaced_store: bool = False) -> None:
        now = time.time()
        records: list[NewJob] = []
        accepted: list[tuple[int, Job]] = []
        controls: list[PipeControl] = []
        # Lines of a replaced store are never run, so they take no slot.
        slots = len(frames) if replaced_store else self.executor.free_slots()
        for frame in frames:
            # A submitter's cancel, attach or done is no job: acted on once the lines before it are committed.
            control = self.replies.control_of(frame)
            if control is not None:
                controls.append(control)
                continue
            record, job = self._decide(frame, now, slots)
            if replaced_store and record.state is JobState.QUEUED:
                reason = (
                    "found in the inbox beside a new store: the store that took it from the pipe is gone and may "
                    "have run it, so it was not run; write it again to run it"
                )
                record, job = record._replace(state=JobState.REFUSED, rule="store-replaced", reason=reason), None
            if job is None and not self.refusals.admit(record, now):
                continue  # over the rate limit: counted into its pod's summary
            if job is not None:
                slots -= 1
                if self.executor.reserve_start():
                    record = record._replace(start_attempt=now)
                    job.attempted = True
                else:
                    self.executor.hold_place(job)
                accepted.append((len(records), job))
            records.append(record)
        # The summaries' counts go in the batch that holds the inbox position of the lines they count.
        committed = self.store.insert([*records, *self.refusals.opened()])
        self.refusals.write_counts(self.store)
        self.store.write("meta", (_INBOX_KEY, f"{position.generation}:{position.offset}"))
        self._in_flight_inserts.add(committed)
        committed.add_done_callback(functools.partial(self._committed, records, accepted, position, controls))

    def _committed(
        self,
        records: list[NewJob],
        accepted: list[tuple[int, Job]],
        position: Position,
        controls: list[PipeControl],
        done: asyncio.Future[list[int]],
    ) -> None:
        self._in_flight_inserts.discard(done)
        if done.cancelled():
            return
        ids = done.result()
        refused = Counter(r.rule for r in records if r.state is JobState.REFUSED)
        if refused:
            # Each refusal is in its record; the log gets one event per batch, so a flood costs it little.
            first = next(ids[i] for i, r in enumerate(records) if r.state is JobState.REFUSED)
            log.warning("lines_refused", count=sum(refused.values()), rules=dict(refused), first_job=first)
        jobs = dict(accepted)
        for index, job in accepted:
            job.id = ids[index]
        # Listeners hear of each record before its job can start or end.
        for index, record in enumerate(records):
            self.events.line_recorded(ids[index], record, jobs.get(index))
        for _, job in accepted:
            self.executor.submit(job)
        self.replies.apply(controls)
        if position.generation == self.inbox.generation:
            self._committed_offset = max(self._committed_offset, position.offset)
        if self.inbox.committed(position):
            self.framer.position = 0
            self._committed_offset = 0
        if not self._reading and self._intake_error is None and not self._stopping:
            self._start_reading()

    def _decide(self, frame: Frame, now: float, slots: int) -> tuple[NewJob, Job | None]:
        if isinstance(frame, Overlong):
            reason = (
                f"the line has {frame.size} bytes; a line must fit in {MAX_LINE_BYTES} bytes with its newline "
                "so that writers are never interleaved"
            )
            record = NewJob(line_text(frame.head) + "…", JobState.REFUSED, now, rule="line-too-long", reason=reason)
            return record, None
        assert isinstance(frame, Line)
        if not frame.terminated:
            reason = (
                "the bytes had no newline at their end when the pipe was read empty; a line ends with a newline "
                "(echo adds one), and bytes without one are never joined to bytes that arrive later"
            )
            pod, client_id = claimed_names(frame.data, self.expansions)
            record = NewJob(line_text(frame.data), JobState.REFUSED, now, pod, client_id)
            return record._replace(rule="unterminated", reason=reason), None
        return self._decide_line(frame.data, now, slots)

    def _decide_line(self, data: bytes, now: float, slots: int) -> tuple[NewJob, Job | None]:
        result = self.memo.evaluate(data, self.expansions, self.loaded, self.host, self.environ)
        argv = result.submit.argv if result.submit is not None else None
        decision = result.decision
        if result.reply is None and isinstance(decision, Refused):
            # The common refusal, made in one step: a flood of them is the daemon's hottest path.
            record = NewJob(
                result.line,
                JobState.REFUSED,
                now,
                result.pod,
                result.client_id,
                argv,
                rule=decision.rule,
                argument=decision.argument,
                reason=decision.reason,
            )
            return record, None
        record = NewJob(result.line, JobState.REFUSED, now, result.pod, result.client_id, argv)
        if result.reply is not None:
            # A reply key: a new one gets its reply, one that came before attaches instead of running twice.
            admission = self.replies.admit(result.reply, argv)
            if admission.rule is not None:
                return record._replace(rule=admission.rule, reason=admission.reason), None
            record = record._replace(reply_nonce=admission.nonce, token_hash=admission.digest)
        if isinstance(decision, Refused):
            return record._replace(rule=decision.rule, argument=decision.argument, reason=decision.reason), None
        record = record._replace(runtime=decision.runtime, image=decision.image)
        if self._stopping:
            reason = "the daemon was stopping when the line arrived; write it again once hostpipe is back"
            return record._replace(rule="shutting-down", reason=reason), None
        if slots <= 0:
            reason = (
                f"{self.executor.max_concurrent} jobs are running and {self.executor.max_queued} are waiting, "
                "the most the policy allows; write the line again later"
            )
            return record._replace(rule="queue-full", reason=reason), None
        queued = record._replace(state=JobState.QUEUED, timeout=decision.timeout, reason=decision.note)
        return queued, self._job(0, decision, result.pod, result.client_id, result.line, now)

    @staticmethod
    def _job(
        job_id: int, allowed: Allowed, pod: str | None, client_id: str | None, line: str, submitted_at: float
    ) -> Job:
        return Job(id=job_id, allowed=allowed, pod=pod, client_id=client_id, line=line, submitted_at=submitted_at)

    def _requeue(self, records: list[JobRecord]) -> None:
        """Decide again, under the policy in force now, the jobs a previous daemon left queued, and run them."""
        for record in records:
            result = evaluate(record.line.encode(), self.expansions, self.loaded, self.host, self.environ)
            decision = result.decision
            if isinstance(decision, Refused):
                reason = f"refused at restart by the policy in force: {decision.reason}"
                self.store.finished(record.id, Outcome(JobState.REFUSED, reason=reason), time.time())
                log.warning("job_refused_at_restart", job=record.id, pod=record.pod, rule=decision.rule)
                continue
            job = self._job(record.id, decision, record.pod, record.client_id, record.line, record.submitted_at)
            self.executor.submit(job)

    def _adopt(self, adopted: list[tuple[JobRecord, str]], containers: Containers) -> None:
        """Follow again the detached containers a previous daemon was following when it stopped."""
        for record, container in adopted:
            result = evaluate(record.line.encode(), self.expansions, self.loaded, self.host, self.environ)
            decision = result.decision
            if isinstance(decision, Refused):
                # The policy in force no longer allows what runs: it is stopped, not taken over.
                containers.stop([record], self.loaded.policy.kill_grace)
                reason = (
                    f"the policy in force at restart no longer allows the line ({decision.rule}); "
                    "its container was stopped"
                )
                self.store.finished(record.id, Outcome(JobState.CANCELLED, reason=reason), time.time())
                log.warning("job_refused_at_restart", job=record.id, pod=record.pod, rule=decision.rule)
                continue
            job = self._job(record.id, decision, record.pod, record.client_id, record.line, record.submitted_at)
            log_path = Path(record.log) if record.log else None
            since = log_path.stat().st_mtime if log_path is not None and log_path.exists() else record.started_at
            self.executor.adopt(job, container, started_at=record.started_at, since=since)

    def _live_rows(self) -> list[tuple[str, list[Any]]]:
        """Full records of every live job, to write again into a store that was created anew."""
        rows = []
        for job in self.executor.live_jobs():
            values = {
                "id": job.id,
                "pod": job.pod,
                "client_id": job.client_id,
                "line": job.line,
                "argv": json.dumps(list(job.allowed.argv)),
                "runtime": job.allowed.runtime,
                "image": job.allowed.image,
                "state": str(job.state),
                "timeout": job.allowed.timeout,
                "submitted_at": job.submitted_at,
                "pid": job.pid,
                "log": str(job.log_path) if job.log_path is not None else None,
                "start_attempt": job.submitted_at if job.attempted else None,
            }
            rows.append(tuple(values.get(column) for column in JOB_COLUMNS))
        return [("restore", rows)] if rows else []

    # -- control, policy, housekeeping ----------------------------------------------------------------------

    def _growth(self) -> None:
        """What keeps the state folder bounded: the rate limit on refused lines, the log cap, retention."""
        policy = lambda: self.loaded.policy  # noqa: E731 - read on each use: a reload changes it
        self.refusals = RefusalLimit(policy)
        live = lambda: [  # noqa: E731
            (j.id, j.log_path) for j in self.executor.live_jobs() if j.log_path and j.state is JobState.RUNNING
        ]
        self.retention = Retention(
            state_dir=self.config.state_dir, store=self.store, policy=policy, keep=self.refusals.open_keys
        )
        for listener in (self.refusals, LogCap(store=self.store, policy=policy, live=live), self.retention):
            self.events.add(listener)

    async def _on_control(self, payload: dict[str, Any]) -> dict[str, Any]:
        op = payload.get("op")
        if op == "status":
            return {
                "ok": True,
                "running": self.executor.running_count,
                "queued": self.executor.queued_count,
                "policy": self.loaded.source,
                "pid": os.getpid(),
                "writer_pid": self.store.writer_pid,
                "store": self.store.degraded or "healthy",
                "intake": self._intake_error or "reading",
                "started_at": self.started_at,
                "pipe": str(self.config.pipe.absolute()),
            }
        if op == "stats":
            return {"ok": True, "loop_lag": self.lag.stats(reset=payload.get("reset") is True)}
        if op == "clean":
            older_than = payload.get("older_than")
            if isinstance(older_than, bool) or not isinstance(older_than, int | float) or not older_than >= 0:
                return {"ok": False, "error": "clean needs older_than, a number of seconds"}
            return {"ok": True, **(await self.retention.sweep(float(older_than))).as_dict()}
        if op != "cancel":
            return {"ok": False, "error": f"unknown op {op!r}"}
        try:
            cancel = Cancel.model_validate(payload)
        except ValueError as error:
            return {"ok": False, "error": str(error)}
        if cancel.job is not None:
            job = self.executor.find(cancel.job)
            jobs = [job] if job is not None else []
        elif cancel.pod is not None:
            jobs = self.executor.jobs_of(cancel.pod)
        else:
            return {"ok": False, "error": "cancel needs a job id or a pod"}
        for job in jobs:
            self.executor.stop(job, StopCause.CANCEL)
        return {"ok": True, "cancelled": [job.id for job in jobs]}

    def reload_policy(self, trigger: str) -> None:
        # A service manager shows the unit `reloading` until READY=1 says the daemon serves again.
        systemd.notify(systemd.reloading())
        try:
            self._reload_policy(trigger)
        finally:
            systemd.notify("READY=1")

    def _reload_policy(self, trigger: str) -> None:
        try:
            # Once a file is in force, its disappearance is an error, not a silent return to the built-in policy.
            required = self.config.policy_required or self.loaded.source != BUILTIN
            loaded = self._guarded(load_policy(self.config.policy, self.environ, required=required))
        except PolicyError as error:
            log.error("policy_invalid", file=error.source, problems=error.problems, kept=self.loaded.source)
            return
        self.loaded = loaded
        policy = loaded.policy
        self.executor.set_limits(
            max_concurrent=self.config.max_concurrent or policy.max_concurrent,
            max_queued=policy.max_queued,
            kill_grace=policy.kill_grace,
        )
        self._warn_missing_runtimes()
        log.info("policy_reloaded", trigger=trigger, policy=loaded.source, runtimes=sorted(policy.runtimes))

    def _policy_changed(self) -> None:
        """The file changed: load it once it has been quiet for a moment (a write may come in several steps)."""
        if self._reload_timer is not None:
            self._reload_timer.cancel()
        self._reload_timer = asyncio.get_running_loop().call_later(_RELOAD_QUIET, self._reload_when_quiet)

    def _reload_when_quiet(self) -> None:
        self._reload_timer = None
        self.reload_policy("file changed")

    def _guarded(self, loaded: LoadedPolicy) -> LoadedPolicy:
        """No job may change what later jobs run with (hostpipe.daemon.exposure): refuse, or withhold runtimes."""
        return guard(loaded, policy=self.config.policy, state_dir=self.config.state_dir, environ=self.environ)

    def _warn_missing_runtimes(self) -> None:
        for name, reason in self.loaded.withheld.items():
            log.warning("runtime_withheld", runtime=name, reason=reason)
        for name, path in self.loaded.executables.items():
            if path is None:
                log.warning(
                    "runtime_not_installed",
                    runtime=name,
                    executable=self.loaded.policy.runtimes[name].executable,
                )

    def _start_watcher(self) -> None:
        if self.config.policy is None:
            return
        from hostpipe.daemon.reload import PolicyWatcher  # noqa: PLC0415 - imported after ready, see startup

        loop = asyncio.get_running_loop()
        watcher = PolicyWatcher(self.config.policy, lambda: loop.call_soon_threadsafe(self._policy_changed))
        try:
            watcher.start()
        except OSError as error:
            # Out of inotify instances or watches: the daemon serves on; SIGHUP still reloads the policy.
            log.warning("policy_watch_unavailable", error=str(error), note="reload the policy with SIGHUP")
            return
        self._watcher = watcher

    def _watch_holder(self, loop: asyncio.AbstractEventLoop) -> None:
        """Under a holder: stop when the holder is gone (killed), as for SIGTERM. Nobody would restart this
        daemon any more, and it would keep the state folder's lock from the `hostpipe serve` started next."""
        value = self.environ.get(HOLDER_SOCKET)
        if not value:
            return
        fd = int(value)
        try:
            os.set_inheritable(fd, False)
        except OSError:
            return
        loop.add_reader(fd, self._holder_readable, fd)

    def _holder_readable(self, fd: int) -> None:
        try:
            data = os.read(fd, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            return  # the holder says nothing on this socket; whatever it was, it is not an end
        asyncio.get_running_loop().remove_reader(fd)
        log.error("holder_gone", note="the holder (`hostpipe serve`) ended: stopping as for SIGTERM")
        if not self._stop.done():
            self._stop.set_result("holder gone")

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if sig is signal.SIGUSR2 and not self._stop.done():
            # Stopping for an upgrade: detached containers keep running, and the next start adopts them.
            self._leave_detached = True
        if not self._stop.done():
            self._stop.set_result(sig.name)
        elif self._signals > 1:
            log.warning("forced_stop", signal=sig.name)
            self.executor.kill_grace = 0
            for job_id in list(self.executor.running_ids()):
                job = self.executor.find(job_id)
                if job is not None:
                    self.executor.kill_now(job)

    def _on_store_health(self, healthy: bool, reason: str | None) -> None:
        status = "store healthy" if healthy else f"store degraded: {reason}"
        systemd.notify(f"STATUS={status}")

    def _identify_state_dir(self) -> tuple[int, int] | None:
        try:
            info = os.stat(self.config.state_dir)
        except OSError:
            return None
        return info.st_dev, info.st_ino

    def _check_state_dir(self) -> None:
        """A state folder removed or replaced under the daemon: say so, make it again, start a new store."""
        current = self._identify_state_dir()
        if current == self._state_dir_id:
            return
        if not self._state_dir_lost:
            log.error(
                "state_dir_lost",
                state_dir=str(self.config.state_dir),
                note="the folder was removed or replaced; it is made again with a new store holding the live jobs",
            )
            self._state_dir_lost = True
        try:
            self.config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            self._lock_fd = lock_state_dir(self.config.state_dir)
        except OSError as error:
            log.error("state_dir_unusable", state_dir=str(self.config.state_dir), error=str(error))
            return
        self._state_dir_id = self._identify_state_dir()
        self._state_dir_lost = False
        generation = self.inbox.generation
        self.inbox.close()
        self.inbox = Inbox(self.config.state_dir)
        self.inbox.recover(None, after=generation)
        self.framer = Framer(MAX_LINE_BYTES)
        self._committed_offset = 0
        self.store.reopen()
        self._tasks.append(asyncio.create_task(self._restart_control()))

    def _check_pipe(self) -> None:
        """A FIFO removed or replaced at its path: pods' lines would go nowhere (or into a file). Say so, and
        make it again where the daemon owns it; keep reading the old one until it is empty."""
        if self.pipe is None or self._stopping:
            return
        state = pipe_state(self.config.pipe, self.pipe.fd)
        if state is None:
            self._pipe_problem = None
            return
        if self.pipe.inherited:
            if self._pipe_problem != state:
                log.error(
                    "pipe_lost",
                    pipe=str(self.config.pipe),
                    state=state,
                    note="the FIFO belongs to the service manager: restart the socket unit "
                    "(systemctl --user restart hostpipe.socket) to make it again",
                )
            self._pipe_problem = state
            return
        log.error("pipe_lost", pipe=str(self.config.pipe), state=state, note="the FIFO is made again")
        try:
            aside, lines = set_aside(self.config.pipe, time.time())
            replacement = open_pipe(self.config.pipe, mode=self.config.pipe_mode, folder_mode=self.config.folder_mode)
        except (OSError, PipeError, AlreadyServing) as error:
            if self._pipe_problem != state:
                log.error("pipe_not_restored", pipe=str(self.config.pipe), error=str(error))
            self._pipe_problem = state
            return
        self._pipe_problem = None
        old = self.pipe
        self._stop_reading()
        # Whatever writers still had the old FIFO open put in it comes first, then the new one is read.
        while self._take():
            pass
        old.close()
        self.pipe = replacement
        hand_pipe_up(self.pipe.fd, self.environ)
        self._start_reading()
        log.warning("pipe_restored", pipe=str(self.config.pipe), set_aside=str(aside) if aside else None)
        if lines:
            # Pods' `echo` wrote into a regular file while the FIFO was gone: their lines are recorded (through
            # the inbox, as if read from the pipe); the file stays where it was set aside.
            self._take_bytes(lines)

    def _take_bytes(self, data: bytes) -> None:
        """Bytes that arrived other than through the pipe, recorded through the inbox like a take."""
        self.inbox.append(data)
        self._frames.extend(self.framer.feed(data, emptied=True))
        if self._deciding is None:
            self._decide_frames()

    async def _restart_control(self) -> None:
        """The control socket lived in the folder that was removed: listen again at the same path."""
        if self._control is not None:
            self._control.close()
        self._control = await serve_control(control_socket(self.config.state_dir), self._on_control)

    async def _tick(self) -> None:
        interval = systemd.watchdog_interval()
        period = min(_TICK, interval) if interval else _TICK
        while True:
            await asyncio.sleep(period)
            if interval:
                systemd.notify("WATCHDOG=1")
            self.executor.tick(also_known=[pid for pid in (self.store.writer_pid,) if pid is not None])
            self.events.tick(time.time())
            self._check_state_dir()
            self._check_pipe()
            if self._intake_error is not None:
                self._start_reading()
