"""What a starting daemon does with each record a previous daemon left live."""

from __future__ import annotations

import pytest

from hostpipe.core.job import JobState
from hostpipe.core.restart import Repair, decide_restart

NOW = 10_000.0

CASES = [
    # (state, attempted, waited seconds, max_age, process alive) -> repair
    (JobState.QUEUED, False, 30, 3600, False, Repair.REQUEUE),
    (JobState.QUEUED, False, 7200, 3600, False, Repair.EXPIRE),
    (JobState.QUEUED, False, 7200, 0, False, Repair.REQUEUE),  # 0: no age limit
    (JobState.QUEUED, True, 1, 3600, False, Repair.INTERRUPT),  # may have started: never twice
    (JobState.RUNNING, True, 1, 3600, True, Repair.STOP),
    (JobState.RUNNING, True, 1, 3600, False, Repair.INTERRUPT),
]


def test_a_running_detached_container_is_adopted_whatever_its_cli_did():
    """The container is the job once its `run -d` CLI returned: the restart follows it, it does not stop it."""
    decision = decide_restart(
        JobState.RUNNING,
        attempted=True,
        submitted_at=0,
        now=NOW,
        max_age=60,
        process_alive=False,
        detached_container=True,
    )
    assert decision.repair is Repair.ADOPT


@pytest.mark.parametrize(
    ("spawned", "alive", "repair"),
    [(False, False, Repair.REQUEUE), (True, True, Repair.STOP), (True, False, Repair.INTERRUPT)],
)
def test_an_attempted_start_is_told_apart_by_its_log_and_its_marker(spawned, alive, repair):
    """No log: never spawned, it runs; a marked process: it runs unwatched, stopped; else it may have run."""
    decision = decide_restart(
        JobState.QUEUED, attempted=True, submitted_at=NOW, now=NOW, max_age=60, process_alive=alive, spawned=spawned
    )
    assert decision.repair is repair


@pytest.mark.parametrize(("state", "attempted", "waited", "max_age", "alive", "repair"), CASES)
def test_each_left_record_gets_one_repair(state, attempted, waited, max_age, alive, repair):
    """Never started runs, too old expires, maybe started is not run again, running is stopped or ended."""
    decision = decide_restart(
        state, attempted=attempted, submitted_at=NOW - waited, now=NOW, max_age=max_age, process_alive=alive
    )
    assert decision.repair is repair
    if repair is not Repair.REQUEUE:
        assert decision.reason


def test_expired_reason_says_how_long_it_waited_and_what_to_do():
    """The record of an expired job tells the pod why it did not run and that it can write the line again."""
    decision = decide_restart(
        JobState.QUEUED, attempted=False, submitted_at=0, now=5000, max_age=60, process_alive=False
    )
    assert decision.reason is not None and "5000s" in decision.reason and "write the line again" in decision.reason
