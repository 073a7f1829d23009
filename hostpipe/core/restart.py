"""What a starting daemon does with each record a previous daemon left live.

A record says queued or running only while a daemon watches it; at start-up none is watched yet, so each one
is decided here, from what the record says and what is still true on the host. The daemon commits a job's
start attempt before it spawns the job, which is what lets a restart tell the cases apart:

- queued, never attempted: it never ran. It runs now, unless it waited longer than the policy's
  `requeue_max_age` (then it is recorded `expired`: a job started a day late may do more harm than good).
- queued, attempted, never recorded as started: the daemon died between committing the attempt and
  recording the start. Its log file is made just before the spawn and every job carries its own marker in its
  environment, so: no log file means it was never spawned (it runs now, as above); a process with its marker
  means it runs unwatched (it is stopped, like a running job); a log file and no process means it may have run
  and ended already. That one is not started again (running a container twice is worse than not at all); it
  is recorded `interrupted`.
- running, its process still there (same pid and start time): it is stopped, and recorded `interrupted`.
- running, its process gone: it ended while no daemon watched; its exit status is unknown (`interrupted`).
- running a detached container (`run -d`) whose id hostpipe recorded: the container is the job, not the CLI
  that started it. It is adopted: followed to its end as if this daemon had started it (if it still runs), or
  ended with the container's own exit code (if it has ended meanwhile).
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
    ADOPT = "adopt"
    """Follow the job's detached container again (or record how it ended)."""


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
    spawned: bool = True,
    detached_container: bool = False,
) -> Decision:
    """`spawned`: the job's log file exists (the spawn was at least begun); `process_alive`: a process of the
    job is still there (for a queued record, found by the job's marker)."""
    if state is JobState.RUNNING and detached_container:
        return Decision(Repair.ADOPT)
    if state is JobState.QUEUED and attempted and (process_alive or spawned):
        if process_alive:
            return Decision(
                Repair.STOP,
                "the daemon stopped while starting the job; it had started and was stopped at the next start",
            )
        return Decision(
            Repair.INTERRUPT,
            "the daemon stopped while starting the job; it may have run already, so it was not started again",
        )
    if state is JobState.QUEUED:
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
