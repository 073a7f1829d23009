"""What a starting daemon does with each record a previous daemon left live.

A record says queued or running only while a daemon watches it; at start-up none is watched yet, so each one
is decided here, from what the record says and what is still true on the host. The daemon commits a job's
start attempt before it spawns the job, which is what lets a restart tell the cases apart:

- queued, never attempted: it never ran. It runs now, unless it waited longer than the policy's
  `requeue_max_age` (then it is recorded `expired`: a job started a day late may do more harm than good).
- queued, attempted, never recorded as started: it may have started just before the daemon died. It is not
  started again (running a container twice is worse than not at all); it is recorded `interrupted`.
- running, its process still there (same pid and start time): it is stopped, and recorded `interrupted`.
- running, its process gone: it ended while no daemon watched; its exit status is unknown (`interrupted`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hostpipe.core.job import JobState


class Repair(enum.Enum):
    REQUEUE = "requeue"
    EXPIRE = "expire"
    INTERRUPT = "interrupt"
    STOP = "stop"
    """Stop what is left of the job (its process group, its container), then record it interrupted."""


@dataclass(frozen=True)
class Decision:
    repair: Repair
    reason: str | None = None


def decide_restart(
    state: JobState,
    *,
    attempted: bool,
    submitted_at: float,
    now: float,
    max_age: float,
    process_alive: bool,
) -> Decision:
    if state is JobState.QUEUED:
        if attempted:
            return Decision(
                Repair.INTERRUPT,
                "the daemon stopped while starting the job; it may have started, so it was not started again",
            )
        waited = now - submitted_at
        if max_age and waited > max_age:
            return Decision(
                Repair.EXPIRE,
                f"the daemon stopped while the job was queued and it had waited {waited:.0f}s, longer than "
                f"requeue_max_age ({max_age:g}s); write the line again to run it",
            )
        return Decision(Repair.REQUEUE)
    if process_alive:
        return Decision(
            Repair.STOP, "the daemon stopped while the job ran; what was left of it was stopped at the next start"
        )
    return Decision(
        Repair.INTERRUPT, "the daemon stopped while the job ran; its process had ended, its exit status is unknown"
    )
