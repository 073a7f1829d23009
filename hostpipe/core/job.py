"""Job states and the only transitions between them.

Every line that reaches the pipe becomes a job record. A refused line is born terminal; an accepted one moves
queued -> running -> a terminal state, or queued -> cancelled. The daemon asks `transition` before it writes
a state, so an impossible move (say, a cancelled job that later "succeeds") is a bug caught here, not a record.
"""

from __future__ import annotations

import enum
import signal as _signal_names
from dataclasses import dataclass


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    REFUSED = "refused"
    INTERRUPTED = "interrupted"
    """The daemon stopped without a chance to see the job end (a crash or a kill); repaired at the next start."""
    EXPIRED = "expired"
    """Queued when the daemon stopped, and older than requeue_max_age when it came back: not run."""

    @property
    def terminal(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


LIVE_STATES = (JobState.QUEUED, JobState.RUNNING)

_ALLOWED: dict[JobState, frozenset[JobState]] = {
    # A queued job left by a stopped daemon is decided again at the next start: refused when the policy in
    # force then refuses it, expired when it waited too long.
    JobState.QUEUED: frozenset(
        {
            JobState.RUNNING,
            JobState.FAILED,
            JobState.CANCELLED,
            JobState.INTERRUPTED,
            JobState.REFUSED,
            JobState.EXPIRED,
        }
    ),
    JobState.RUNNING: frozenset(
        {
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.TIMED_OUT,
            JobState.CANCELLED,
            JobState.INTERRUPTED,
        }
    ),
}


class IllegalTransition(Exception):
    pass


def transition(current: JobState, target: JobState) -> JobState:
    """Return `target` when a job in `current` may move there; raise IllegalTransition otherwise."""
    if target not in _ALLOWED.get(current, frozenset()):
        raise IllegalTransition(f"a {current} job cannot become {target}")
    return target


class StopCause(enum.StrEnum):
    """Why hostpipe itself ended a job, when it did."""

    TIMEOUT = "timeout"
    CANCEL = "cancel"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class Outcome:
    """How a job ended: the terminal state with its exit code or signal and a reason a person can read."""

    state: JobState
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None


def signal_name(number: int) -> str:
    try:
        return _signal_names.Signals(number).name
    except ValueError:
        return f"signal {number}"


def outcome_of_exit(returncode: int, stop: StopCause | None, *, detail: str = "") -> Outcome:
    """Map a process's wait status (Popen-style: negative means killed by that signal) to an outcome.

    When hostpipe itself stopped the job, the cause decides the state whatever the process reported: a job
    that traps SIGTERM and exits 0 after a timeout still timed out.
    """
    exit_code = returncode if returncode >= 0 else None
    sig = -returncode if returncode < 0 else None
    how = f"exit code {exit_code}" if sig is None else f"killed by {signal_name(sig)}"
    if stop is StopCause.TIMEOUT:
        return Outcome(JobState.TIMED_OUT, exit_code, sig, f"timed out{detail}; {how}")
    if stop is StopCause.CANCEL:
        return Outcome(JobState.CANCELLED, exit_code, sig, f"cancelled{detail}; {how}")
    if stop is StopCause.SHUTDOWN:
        return Outcome(JobState.CANCELLED, exit_code, sig, f"daemon shut down{detail}; {how}")
    if returncode == 0:
        return Outcome(JobState.SUCCEEDED, 0, None, None)
    return Outcome(JobState.FAILED, exit_code, sig, how)
