"""Detached containers are jobs too: following a `run -d` container for its job until it ends.

`docker run -d` and `podman run -d` return as soon as the container runs; the job is not over then, it has only
begun. Once the CLI has exited successfully, its job stays `running` and keeps its slot, and two helper
processes follow the container by the id hostpipe obtained (its own cidfile), never by a name the line chose:

- `RUNTIME wait ID` ends when the container does and prints its exit code, which becomes the job's;
- `RUNTIME logs -f ID` appends the container's output to the job's log, so `hostpipe logs -f` follows it.

Stopping the job (timeout, cancel, shutdown) stops the container by its id (`RUNTIME stop -t GRACE ID`); the
waiter then reports how it ended. A container the engine does not remove by itself (`--rm`) is removed once its
end is recorded, unless the policy keeps containers. Both helpers carry the job's marker in their environment,
so a restarted daemon finds and ends those of its predecessor before it adopts the container (see reconcile).

The engine would remove a `--rm` container, and its last output and exit code with it, the moment it exits,
racing both helpers; so for a followed container hostpipe adds `--rm=false` to the line and removes the
container itself once its end is recorded, as the line asked (see `hostpipe.core.containers`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from hostpipe.core.containers import stop_command
from hostpipe.core.job import JobState, Outcome, StopCause, outcome_of_exit
from hostpipe.daemon import cidfiles
from hostpipe.daemon.commands import OwnChildren, run_command
from hostpipe.daemon.procs import JOB_MARKER, job_marker, signal_group
from hostpipe.daemon.spawn import spawn

if TYPE_CHECKING:
    from hostpipe.daemon.executor import Job

log = structlog.get_logger("hostpipe.supervise")

APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
REPLACE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
_DRAIN = 2.0
"""Seconds the log follower gets, after the container ended, to copy its last output."""
_STOP_MARGIN = 30.0
"""Seconds past the grace after which a container that has not ended is given up on."""


@dataclass
class Following:
    """The processes that follow one job's detached container."""

    container: str
    exit_file: Path
    waiter: int | None = None
    waiter_fd: int | None = None
    follower: int | None = None
    follower_fd: int | None = None
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    waited: bool = False
    """The waiter has reported how the container ended."""
    exit_code: int | None = None


Finish = Callable[["Job", Outcome], None]


class Supervisor:
    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        cid_dir: Path,
        stopper: concurrent.futures.Executor,
        store_id: str,
        cwd: str,
        finish: Finish,
        record_container: Callable[[Job, str], object],
        own: OwnChildren,
    ) -> None:
        self._loop = loop
        self._cid_dir = cid_dir
        self._stopper = stopper
        self._store_id = store_id
        self._cwd = cwd
        self._finish = finish
        self._record_container = record_container
        self.own = own
        self._following: dict[int, Following] = {}

    def following(self, job: Job) -> bool:
        return job.id in self._following

    # -- the container's life -------------------------------------------------------------------------------

    def cli_exited(self, job: Job, returncode: int) -> bool:
        """The job's `run -d` CLI ended. True when the job goes on, following its container."""
        assert job.cidfile is not None
        container = cidfiles.read_container_id(job.cidfile)
        if returncode != 0 or container is None:
            if container is not None:
                # Created, but the CLI failed (a start error): what is left is removed with the job.
                self.remove_later(job, container)
            return False
        self._record_container(job, container)
        self.follow(job, container)
        if job.stop_cause is not None:
            # Stopped while its CLI was still starting it: the container stops now.
            self.stop(job, job.stop_cause, grace=0)
        return True

    def follow(self, job: Job, container: str, *, since: float | None = None) -> None:
        """Start the waiter and the log follower for `container` (`since`: adopt, without repeating output)."""
        executable = job.allowed.argv[0]
        env = {**job.allowed.env, JOB_MARKER: job_marker(self._store_id, job.id)}
        following = Following(container, self._cid_dir / f"{job.id}.exit")
        self._following[job.id] = following
        assert job.log_path is not None
        try:
            following.waiter = spawn((executable, "wait", container), env, following.exit_file, log_flags=REPLACE)
            following.waiter_fd = os.pidfd_open(following.waiter)
            logs = [executable, "logs", "-f"]
            if since is not None:
                logs += ["--since", str(int(since))]
            following.follower = spawn((*logs, container), env, job.log_path, log_flags=APPEND)
            following.follower_fd = os.pidfd_open(following.follower)
        except OSError as error:
            self._end(job, Outcome(JobState.FAILED, reason=f"cannot follow the container {container}: {error}"))
            return
        self._loop.add_reader(following.waiter_fd, self._waiter_ended, job)
        self._loop.add_reader(following.follower_fd, self._follower_ended, job)
        job.logger.info("container_followed", container=container, adopted=since is not None)

    def _waiter_ended(self, job: Job) -> None:
        following = self._following[job.id]
        code = self._reap(following, "waiter")
        text = ""
        with contextlib.suppress(OSError):
            text = following.exit_file.read_text(errors="replace")
        cidfiles.remove(following.exit_file)
        words = text.split()
        following.waited = True
        following.exit_code = int(words[-1]) if code == 0 and words and words[-1].lstrip("-").isdigit() else None
        if following.follower is None:
            self._ended(job, following.exit_code)
        else:
            # The follower ends with the container's output stream; give it a moment to copy the last lines.
            following.timers.append(self._loop.call_later(_DRAIN, self._ended, job, following.exit_code))

    def _follower_ended(self, job: Job) -> None:
        following = self._following.get(job.id)
        if following is None:
            return
        self._reap(following, "follower")
        if following.waited:
            # The waiter has reported and the output is all copied: no need to wait out the drain.
            self._ended(job, following.exit_code)

    def _reap(self, following: Following, role: str) -> int:
        if role == "waiter":
            pid, fd = following.waiter, following.waiter_fd
        else:
            pid, fd = following.follower, following.follower_fd
        assert pid is not None and fd is not None
        self._loop.remove_reader(fd)
        os.close(fd)
        _, status = os.waitpid(pid, 0)
        if role == "waiter":
            following.waiter = following.waiter_fd = None
        else:
            following.follower = following.follower_fd = None
        return os.waitstatus_to_exitcode(status)

    def _ended(self, job: Job, exit_code: int | None) -> None:
        following = self._following.get(job.id)
        if following is None or job.state.terminal:
            return
        container = following.container
        self._stop_helpers(job)
        detail = f" after {job.allowed.timeout:g}s" if job.stop_cause is StopCause.TIMEOUT else ""
        if exit_code is None:
            reason = f"the container {container[:12]} ended but its engine did not report its exit status"
            outcome = Outcome(JobState.FAILED, reason=reason)
            if job.stop_cause is not None:
                outcome = outcome_of_exit(-signal.SIGKILL, job.stop_cause, detail=detail)
        else:
            outcome = outcome_of_exit(exit_code, job.stop_cause, detail=detail)
        self._end(job, outcome)
        self.remove_later(job, container)

    def _end(self, job: Job, outcome: Outcome) -> None:
        self._stop_helpers(job)
        self._following.pop(job.id, None)
        if job.cidfile is not None:
            cidfiles.remove(job.cidfile)
        self._finish(job, outcome)

    def _stop_helpers(self, job: Job) -> None:
        following = self._following.get(job.id)
        if following is None:
            return
        for timer in following.timers:
            timer.cancel()
        following.timers.clear()
        for role in ("waiter", "follower"):
            pid = following.waiter if role == "waiter" else following.follower
            if pid is not None:
                signal_group(pid, signal.SIGKILL)
                self._reap(following, role)

    # -- stopping, leaving ----------------------------------------------------------------------------------

    def stop(self, job: Job, cause: StopCause, *, grace: float) -> None:
        """Stop the container by its id; its waiter then reports the end. Give up after grace + a margin."""
        following = self._following.get(job.id)
        if following is None:
            return
        job.stop_cause = job.stop_cause or cause
        job.logger.info("job_stopping", cause=str(cause), grace=grace, container=following.container)
        self._loop.run_in_executor(self._stopper, self._run_stop, job, following.container, grace)
        following.timers.append(self._loop.call_later(grace + _STOP_MARGIN, self._gave_up, job))

    def _gave_up(self, job: Job) -> None:
        following = self._following.get(job.id)
        if following is None or job.state.terminal:
            return
        job.logger.warning("container_did_not_stop", container=following.container)
        reason = f"the container {following.container[:12]} did not end after `stop`; it may still run"
        self._end(job, Outcome(JobState.INTERRUPTED, reason=reason))

    def _run_stop(self, job: Job, container: str, grace: float) -> None:
        """On a stopper thread: `RUNTIME stop -t GRACE ID`."""
        command = stop_command(job.allowed.argv[0], grace, container)
        self._run(job, command, grace + _STOP_MARGIN, "container_stopped")

    def remove_later(self, job: Job, container: str) -> None:
        """Remove the job's ended container on a stopper thread, unless the engine or the policy keeps it."""
        handle = job.allowed.container
        if handle is None or not handle.removed_by_hostpipe:
            return
        command = (job.allowed.argv[0], "rm", "--force", container)
        self._loop.run_in_executor(self._stopper, self._run, job, command, _STOP_MARGIN, "container_removed")

    def _run(self, job: Job, command: tuple[str, ...], timeout: float, event: str) -> None:
        try:
            code, stderr = run_command(command, job.allowed.env, cwd=self._cwd, timeout=timeout, own=self.own)
        except OSError as error:
            job.logger.warning(f"{event}_failed", error=str(error))
            return
        job.logger.info(event, exit_code=code, stderr=stderr or None)

    def leave(self, job: Job) -> None:
        """Upgrade: end the helpers, keep the container running and its record `running`, for the next daemon."""
        if job.id in self._following:
            self._stop_helpers(job)
            self._following.pop(job.id, None)
            job.logger.info("container_left_running", note="the next start adopts it")

    def ids(self) -> list[int]:
        return list(self._following)

    def pids(self) -> list[int]:
        """The helper processes this supervisor waits for itself."""
        return [
            pid
            for following in self._following.values()
            for pid in (following.waiter, following.follower)
            if pid is not None
        ]
