"""The one-line summary a service manager shows for the daemon (`systemctl --user status hostpipe`).

It is sent as STATUS= from the housekeeping tick, and only when it changed, so a flood of lines costs one
datagram a second at most: jobs running and queued, lines recorded since the start (how many refused), and the
store's health when it is not healthy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hostpipe.core.job import JobState
from hostpipe.daemon import systemd
from hostpipe.daemon.events import Listener

if TYPE_CHECKING:
    from hostpipe.daemon.executor import Job
    from hostpipe.daemon.store import NewJob


class ServiceStatus(Listener):
    def __init__(
        self,
        *,
        running: Callable[[], int],
        queued: Callable[[], int],
        store_problem: Callable[[], str | None],
        notify: Callable[[str], object] = systemd.notify,
    ) -> None:
        self._running = running
        self._queued = queued
        self._store_problem = store_problem
        self._notify = notify
        self.lines = 0
        self.refused = 0
        self._sent: str | None = None

    def line_recorded(self, job_id: int, record: NewJob, job: Job | None) -> None:
        self.lines += 1
        if record.state is JobState.REFUSED:
            self.refused += 1

    def summary(self) -> str:
        text = f"{self._running()} running, {self._queued()} queued, {self.lines} lines ({self.refused} refused)"
        problem = self._store_problem()
        return f"{text}; store degraded: {problem}" if problem else text

    def tick(self, now: float) -> None:
        text = self.summary()
        if text != self._sent:
            self._sent = text
            self._notify(f"STATUS={text}")
