"""What happens to lines and jobs, told to whoever wants to know: metrics, replies to pods, the status.

The server and the executor call these hooks at the moments that matter, after the store has been handed the
change; listeners keep their own state and must be quick (they run on the event loop). A listener that fails
is logged and ignored: observing the daemon must never stop it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from hostpipe.core.job import Outcome
    from hostpipe.daemon.executor import Job
    from hostpipe.daemon.store import NewJob

log = structlog.get_logger("hostpipe.events")


class Listener:
    """Override what you need; every hook does nothing by default."""

    def line_recorded(self, job_id: int, record: NewJob, job: Job | None) -> None:
        """A line's record is committed: refused (`job` None), or queued as `job`."""

    def job_started(self, job: Job) -> None:
        """The job's process runs (its `pid` and `log_path` are set)."""

    def job_finished(self, job: Job, outcome: Outcome) -> None:
        """The job reached a terminal state."""

    def tick(self, now: float) -> None:
        """Once per housekeeping tick (about a second)."""


class Events(Listener):
    """Every listener, called in the order they were added."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def add(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _each(self, hook: str, *args: Any) -> None:
        for listener in self._listeners:
            try:
                getattr(listener, hook)(*args)
            except Exception:  # a listener's bug must not stop the daemon
                log.exception("listener_failed", listener=type(listener).__name__, hook=hook)

    def line_recorded(self, job_id: int, record: NewJob, job: Job | None) -> None:
        self._each("line_recorded", job_id, record, job)

    def job_started(self, job: Job) -> None:
        self._each("job_started", job)

    def job_finished(self, job: Job, outcome: Outcome) -> None:
        self._each("job_finished", job, outcome)

    def tick(self, now: float) -> None:
        self._each("tick", now)
