"""The daemon's lifecycle: startup, the main loop, shutdown.

Reading the pipe is the hot path and never waits on a job: each readable event drains what the pipe holds,
turns every line into a decision, commits the batch's records in one transaction, then hands the accepted
jobs to the executor. Housekeeping (the systemd watchdog) lives in one periodic tick. Signal handlers only
resolve the stop future; a second SIGINT or SIGTERM kills the jobs at once instead of waiting for the grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import os
import pwd
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from hostpipe.core.evaluate import evaluate, line_text
from hostpipe.core.framing import Framer, Line, Overlong
from hostpipe.core.grammar import MAX_LINE_BYTES, Expansions
from hostpipe.core.job import JobState, StopCause
from hostpipe.core.policy import LoadedPolicy, Refused
from hostpipe.core.request import Cancel
from hostpipe.daemon import systemd
from hostpipe.daemon.control import serve_control
from hostpipe.daemon.executor import Executor, Job
from hostpipe.daemon.exposure import guard
from hostpipe.daemon.fifo import OpenPipe, PipeError, inherited_pipe, open_pipe
from hostpipe.daemon.host import RealHost
from hostpipe.daemon.paths import cid_dir, control_socket
from hostpipe.daemon.policyfile import BUILTIN, PolicyError, load_policy
from hostpipe.daemon.reconcile import Containers, reconcile
from hostpipe.daemon.store import NewJob, Store

log = structlog.get_logger("hostpipe.server")

_READ_CHUNK = 1 << 16
_READ_BUDGET = 1 << 16
"""Bytes read per wake-up before yielding to the loop, so a flood of lines cannot hold up job bookkeeping
(exits, timeouts, spawns) for longer than one such batch takes to decide."""
_TICK = 5.0


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
    line_gap: float = 0.1
    """Seconds of quiet after which bytes without a newline are taken as a whole line."""


def _identity() -> tuple[str, str]:
    entry = pwd.getpwuid(os.geteuid())
    return os.environ.get("HOME") or entry.pw_dir, os.environ.get("USER") or entry.pw_name


class Server:
    def __init__(self, config: ServeConfig, environ: dict[str, str] | None = None) -> None:
        self.config = config
        self.environ = dict(os.environ if environ is None else environ)
        home, user = _identity()
        self.expansions = Expansions(home=home, user=user)
        self.host = RealHost(home=home)
        self.loaded: LoadedPolicy
        self.store: Store
        self.executor: Executor
        self.pipe: OpenPipe | None = None
        self.framer = Framer(MAX_LINE_BYTES)
        self._gap_timer: asyncio.TimerHandle | None = None
        self._stop: asyncio.Future[str]
        self._signals = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._control: asyncio.AbstractServer | None = None
        self._watcher: Any = None
        self._stopping = False
        self._lock_fd: int | None = None

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
        self.loaded = self._guarded(load_policy(self.config.policy, self.environ, required=self.config.policy_required))
        self._warn_missing_runtimes()
        self.config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_state_dir()
        self.store = Store(self.config.state_dir)
        containers = Containers(self.loaded, self.environ, cid_dir(self.config.state_dir), self.expansions.home)
        reconcile(self.store, time.time(), grace=self.loaded.policy.kill_grace, containers=containers)
        policy = self.loaded.policy
        self.executor = Executor(
            store=self.store,
            logs_dir=self.config.state_dir / "logs",
            cid_dir=cid_dir(self.config.state_dir),
            max_concurrent=self.config.max_concurrent or policy.max_concurrent,
            max_queued=policy.max_queued,
            kill_grace=policy.kill_grace,
            cwd=self.expansions.home,
        )
        self._control = await serve_control(control_socket(self.config.state_dir), self._on_control)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self.reload_policy, "SIGHUP")
        self.pipe = inherited_pipe(self.config.pipe) or open_pipe(
            self.config.pipe, mode=self.config.pipe_mode, folder_mode=self.config.folder_mode
        )
        loop.add_reader(self.pipe.fd, self._on_readable)
        self._tasks.append(asyncio.create_task(self._tick()))
        log.info(
            "ready",
            pipe=str(self.pipe.path),
            inherited=self.pipe.inherited,
            state_dir=str(self.config.state_dir),
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

    def _lock_state_dir(self) -> None:
        """One daemon per state folder: a second one would repair, and so stop, the first one's running jobs."""
        path = self.config.state_dir / "serve.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            os.close(fd)
            raise PipeError(f"another hostpipe serve is using the state folder {self.config.state_dir}") from error
        self._lock_fd = fd

    async def main_loop(self) -> None:
        reason = await self._stop
        log.info("stopping", reason=reason)

    async def shutdown(self) -> None:
        systemd.notify("STOPPING=1")
        loop = asyncio.get_running_loop()
        self._stopping = True
        if self.pipe is not None:
            loop.remove_reader(self.pipe.fd)
            # Lines already in the pipe are recorded (refused: the daemon is stopping), never lost unseen.
            self._drain_pipe()
            self._flush_partial()
            self.pipe.close()
        for task in self._tasks:
            task.cancel()
        if self._watcher is not None:
            self._watcher.stop()
        if self._control is not None:
            self._control.close()
        await self.executor.shutdown()
        with contextlib.suppress(FileNotFoundError):
            control_socket(self.config.state_dir).unlink()
        self.store.close()
        log.info("stopped")

    # -- the pipe -------------------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        self._drain_pipe(budget=_READ_BUDGET)
        if self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None
        if self.framer.pending:
            self._gap_timer = asyncio.get_running_loop().call_later(self.config.line_gap, self._flush_partial)

    def _drain_pipe(self, budget: int | None = None) -> None:
        assert self.pipe is not None
        frames = []
        total = 0
        while budget is None or total < budget:
            try:
                data = os.read(self.pipe.fd, _READ_CHUNK)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            if not data:
                break
            total += len(data)
            frames.extend(self.framer.feed(data))
        if frames:
            self._handle(frames)

    def _flush_partial(self) -> None:
        self._gap_timer = None
        frames = self.framer.flush()
        if frames:
            self._handle(frames)

    def _handle(self, frames: list[Line | Overlong]) -> None:
        now = time.time()
        records: list[NewJob] = []
        accepted: list[tuple[int, Job]] = []
        slots = self.executor.free_slots()
        for frame in frames:
            record, job = self._decide(frame, now, slots)
            if job is not None:
                slots -= 1
                accepted.append((len(records), job))
            records.append(record)
        ids = self.store.insert(records)
        for index, record in enumerate(records):
            if record.state is JobState.REFUSED:
                log.warning(
                    "line_refused",
                    job=ids[index],
                    pod=record.pod,
                    rule=record.rule,
                    argument=record.argument,
                    reason=record.reason,
                )
        for index, job in accepted:
            job.id = ids[index]
            self.executor.submit(job)

    def _decide(self, frame: Line | Overlong, now: float, slots: int) -> tuple[NewJob, Job | None]:
        if isinstance(frame, Overlong):
            reason = (
                f"the line has {frame.size} bytes; a line must fit in {MAX_LINE_BYTES} bytes with its newline "
                "so that writers are never interleaved"
            )
            record = NewJob(line_text(frame.head) + "…", JobState.REFUSED, now, rule="line-too-long", reason=reason)
            return record, None
        result = evaluate(frame.data, self.expansions, self.loaded, self.host, self.environ)
        argv = result.submit.argv if result.submit is not None else None
        record = NewJob(result.line, JobState.REFUSED, now, result.pod, result.client_id, argv)
        decision = result.decision
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
        return queued, Job(id=0, allowed=decision, pod=result.pod, client_id=result.client_id)

    # -- control, policy, housekeeping ----------------------------------------------------------------------

    async def _on_control(self, payload: dict[str, Any]) -> dict[str, Any]:
        op = payload.get("op")
        if op == "status":
            return {
                "ok": True,
                "running": self.executor.running_count,
                "queued": self.executor.queued_count,
                "policy": self.loaded.source,
                "pid": os.getpid(),
            }
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
        try:
            # Once a file is in force, its disappearance is an error, not a silent return to the built-in policy.
            required = self.config.policy_required or self.loaded.source != BUILTIN
            loaded = self._guarded(load_policy(self.config.policy, self.environ, required=required))
        except PolicyError as error:
            log.error("policy_invalid", file=error.source, problems=error.problems, kept=self.loaded.source)
            return
        self.loaded = loaded
        policy = loaded.policy
        self.executor.max_concurrent = self.config.max_concurrent or policy.max_concurrent
        self.executor.max_queued = policy.max_queued
        self.executor.kill_grace = policy.kill_grace
        self._warn_missing_runtimes()
        log.info("policy_reloaded", trigger=trigger, policy=loaded.source, runtimes=sorted(policy.runtimes))

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
        self._watcher = PolicyWatcher(
            self.config.policy, lambda: loop.call_soon_threadsafe(self.reload_policy, "file changed")
        )
        self._watcher.start()

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if not self._stop.done():
            self._stop.set_result(sig.name)
        elif self._signals > 1:
            log.warning("forced_stop", signal=sig.name)
            self.executor.kill_grace = 0
            for job_id in list(self.executor.running_ids()):
                job = self.executor.find(job_id)
                if job is not None:
                    self.executor.kill_now(job)

    async def _tick(self) -> None:
        interval = systemd.watchdog_interval()
        period = min(_TICK, interval) if interval else _TICK
        while True:
            await asyncio.sleep(period)
            if interval:
                systemd.notify("WATCHDOG=1")
