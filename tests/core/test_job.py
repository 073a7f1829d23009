"""Job states: legal moves only, and exits mapped to outcomes."""

from __future__ import annotations

import signal

import pytest

from hostpipe.core.job import IllegalTransition, JobState, StopCause, outcome_of_exit, transition

MOVES = [
    # (from, to, legal)
    (JobState.QUEUED, JobState.RUNNING, True),
    (JobState.QUEUED, JobState.CANCELLED, True),  # cancelled before it started
    (JobState.QUEUED, JobState.FAILED, True),  # could not be started
    (JobState.RUNNING, JobState.SUCCEEDED, True),
    (JobState.RUNNING, JobState.TIMED_OUT, True),
    (JobState.RUNNING, JobState.INTERRUPTED, True),  # repaired after a daemon crash
    (JobState.QUEUED, JobState.SUCCEEDED, False),  # a job that never ran cannot succeed
    (JobState.CANCELLED, JobState.SUCCEEDED, False),  # terminal states are final
    (JobState.REFUSED, JobState.QUEUED, False),  # a refusal is never run later
    (JobState.SUCCEEDED, JobState.FAILED, False),
]


@pytest.mark.parametrize(("current", "target", "legal"), MOVES)
def test_only_legal_transitions_pass(current, target, legal):
    """transition() allows exactly the lifecycle's moves and raises on every other."""
    if legal:
        assert transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition):
            transition(current, target)


def test_terminal_states():
    """Only queued and running are live."""
    assert {s for s in JobState if not s.terminal} == {JobState.QUEUED, JobState.RUNNING}


EXITS = [
    # (returncode, cause, state, exit_code, signal)
    (0, None, JobState.SUCCEEDED, 0, None),
    (3, None, JobState.FAILED, 3, None),
    (-signal.SIGSEGV, None, JobState.FAILED, None, signal.SIGSEGV),
    (0, StopCause.TIMEOUT, JobState.TIMED_OUT, 0, None),  # trapped SIGTERM and exited 0: still a timeout
    (-signal.SIGKILL, StopCause.TIMEOUT, JobState.TIMED_OUT, None, signal.SIGKILL),
    (-signal.SIGTERM, StopCause.CANCEL, JobState.CANCELLED, None, signal.SIGTERM),
    (143, StopCause.SHUTDOWN, JobState.CANCELLED, 143, None),
]


@pytest.mark.parametrize(("returncode", "cause", "state", "exit_code", "sig"), EXITS)
def test_exit_maps_to_outcome(returncode, cause, state, exit_code, sig):
    """The stop cause, when hostpipe stopped the job, decides the state; the wait status fills the rest."""
    outcome = outcome_of_exit(returncode, cause)
    assert (outcome.state, outcome.exit_code, outcome.signal) == (state, exit_code, sig)
    assert (outcome.reason is None) == (state is JobState.SUCCEEDED)
