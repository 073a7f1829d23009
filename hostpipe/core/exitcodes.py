"""The one table of exit codes, for every command and every client.

Two kinds of command share it. Most commands answer a question or do a thing: they use 0-4, and a service
manager or a script can tell a configuration error (3: fix something first, do not retry) from a transient
failure (4: retry later). Commands that stand in for a job (`hostpipe wait`, `hostpipe submit --wait`, the
sh client, `logs -f` at its end) exit with the job's own code instead, so hostpipe's own outcomes move to a
small reserved range below 126, as timeout(1) reserves 124-127: refused, lost, cancelled, timed out, no daemon.
A job killed by a signal exits 128+N, as a shell reports it. A job that itself exits with a reserved code is
indistinguishable by the code alone; the client then prints no reason of its own, which is how to tell.
"""

from __future__ import annotations

import enum


class Exit(enum.IntEnum):
    # -- every command -------------------------------------------------------------------------------------
    OK = 0
    NO = 1
    """A negative answer: `check` refused a line, no such job, nothing to cancel."""
    USAGE = 2
    """The command line is wrong (click's own code)."""
    CONFIG = 3
    """A configuration error: an invalid policy, an unsafe pipe or state folder, a corrupt or newer store.
    Retrying cannot help; a service manager must not restart (RestartPreventExitStatus=3)."""
    UNAVAILABLE = 4
    """A transient failure: no daemon answering, another daemon holds the pipe, the store is busy or full.
    Retrying later may succeed."""

    # -- commands that stand in for a job ------------------------------------------------------------------
    NO_DAEMON = 120
    """The request could not be handed to a daemon, or no daemon answered while waiting."""
    LOST = 121
    """The daemon lost the job: it was interrupted by a crash, expired in the queue, or its record is gone."""
    REFUSED = 122
    """The policy refused the line; the reason is printed."""
    CANCELLED = 123
    """The job was cancelled (by the operator, the pod, or the daemon's shutdown)."""
    TIMED_OUT = 124
    """The job reached its timeout and was stopped (as timeout(1) reports it)."""
    CLIENT_ERROR = 125
    """The client itself failed: bad usage, an unreadable reply (as timeout(1) uses 125 for its own failure)."""


SIGNAL_BASE = 128
"""A job killed by signal N exits SIGNAL_BASE + N, as a shell reports it."""

JOB_RESERVED = frozenset(range(Exit.NO_DAEMON, Exit.CLIENT_ERROR + 1))
"""The codes hostpipe's own outcomes use where a job's code would otherwise pass through."""


def job_exit_code(state: str, exit_code: int | None, signal: int | None) -> int:
    """The code a command standing in for a finished job exits with, from the job's terminal record.

    A job that ended by itself passes its code through (128+N for a signal) whatever hostpipe called it;
    hostpipe's own outcomes take their reserved codes.
    """
    if state in ("succeeded", "failed"):
        if signal is not None:
            return SIGNAL_BASE + signal
        return exit_code if exit_code is not None else Exit.LOST
    return {
        "timed_out": Exit.TIMED_OUT,
        "cancelled": Exit.CANCELLED,
        "refused": Exit.REFUSED,
        "interrupted": Exit.LOST,
        "expired": Exit.LOST,
    }.get(state, Exit.LOST)
