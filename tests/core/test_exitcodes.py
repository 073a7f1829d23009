"""The one exit-code table: commands' own codes and the codes of commands that stand in for a job."""

from __future__ import annotations

import pytest

from hostpipe.core.exitcodes import JOB_RESERVED, Exit, job_exit_code


@pytest.mark.parametrize(
    ("state", "exit_code", "signal", "expected"),
    [
        ("succeeded", 0, None, 0),
        ("failed", 1, None, 1),
        ("failed", 137, None, 137),  # a job's own 137 passes through
        ("failed", None, 9, 137),  # killed by SIGKILL: 128 + 9, as a shell says
        ("timed_out", None, 15, Exit.TIMED_OUT),
        ("cancelled", 0, None, Exit.CANCELLED),
        ("refused", None, None, Exit.REFUSED),
        ("interrupted", None, None, Exit.LOST),
        ("expired", None, None, Exit.LOST),
    ],
)
def test_job_codes_pass_through_and_hostpipe_outcomes_are_reserved(state, exit_code, signal, expected):
    """The job's own code or 128+signal passes through; hostpipe's own outcomes take their reserved codes."""
    assert job_exit_code(state, exit_code, signal) == expected


def test_reserved_range_sits_below_the_shell_codes_and_holds_every_outcome():
    """120-125: clear of 126/127 (cannot run, not found) and of 128+N (signals), as timeout(1) does it."""
    assert min(JOB_RESERVED) == 120 and max(JOB_RESERVED) == 125
    outcomes = {Exit.NO_DAEMON, Exit.LOST, Exit.REFUSED, Exit.CANCELLED, Exit.TIMED_OUT, Exit.CLIENT_ERROR}
    assert {int(code) for code in outcomes} == set(JOB_RESERVED)


def test_configuration_errors_and_transient_failures_have_different_codes():
    """A service manager must be able to tell `do not retry` (3) from `retry later` (4)."""
    assert (Exit.CONFIG, Exit.UNAVAILABLE) == (3, 4)
