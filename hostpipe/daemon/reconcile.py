"""Repairing records that a previous daemon left live.

A record says queued or running only while a daemon watches it. At startup no job is watched yet, so each live
record is ended explicitly, and the repair is logged. A queued job is not started again: the previous daemon
may have started it just before it died, and running a container twice is worse than not at all. A running job
whose process still exists (same pid and same start time) is stopped the usual way, SIGTERM then SIGKILL.
"""

from __future__ import annotations

import signal
import time

import structlog

from hostpipe.core.job import JobState, Outcome
from hostpipe.daemon.procs import process_start_time, signal_group
from hostpipe.daemon.store import Store

log = structlog.get_logger("hostpipe.reconcile")


def reconcile(store: Store, now: float, *, grace: float) -> int:
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
    while survivors and time.monotonic() < deadline:
        time.sleep(0.05)
        survivors = [r for r in survivors if process_start_time(r.pid or 0) == r.pid_start]
    for record in survivors:
        signal_group(record.pid or 0, signal.SIGKILL)
    return len(live)
