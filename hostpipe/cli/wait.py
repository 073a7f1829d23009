"""`hostpipe wait`: block until jobs end, and exit with the job's own exit code.

It stands in for the job, as `submit --wait` does (hostpipe.core.exitcodes): the job's code, 128+N for a
signal, and hostpipe's outcomes in their reserved range (122 refused, 121 lost, 123 cancelled, 124 timed out).
It never waits for ever on a record no daemon will end: with no daemon serving the state folder it exits 120.
"""

from __future__ import annotations

import sys
import time

import click

from hostpipe.cli.common import Exit, Locations, errors_as_lines, fail, locations
from hostpipe.cli.escape import escape
from hostpipe.core.exitcodes import job_exit_code
from hostpipe.daemon.liveness import serving
from hostpipe.daemon.records import JobRecord, Reader

_POLL = 0.1
_POLL_MAX = 1.0
_GONE_CHECKS = 3


def _code(record: JobRecord) -> int:
    return job_exit_code(str(record.state), record.exit_code, record.signal)


@click.command()
@locations
@click.argument("jobs", metavar="JOB...", type=int, nargs=-1, required=True)
@click.option("--timeout", metavar="DURATION", help="Give up after this long (90s, 15m, 2h): exit 124.")
@click.option("-q", "--quiet", is_flag=True, help="Say nothing; only the exit code tells.")
@errors_as_lines
def wait(where: Locations, jobs: tuple[int, ...], timeout: str | None, quiet: bool) -> None:
    """Wait until every JOB has ended; exit with the code of the first (in the order given) that did not exit 0.

    The code is the job's own (128+N when a signal killed it); 121 lost or interrupted, 122 refused,
    123 cancelled, 124 timed out (also when --timeout passes first; the message says which), 120 when no
    daemon serves the state folder to end a job that is still recorded live.
    """
    limit = None
    if timeout is not None:
        from hostpipe.core.durations import parse_duration  # noqa: PLC0415 - compiles patterns; only with --timeout

        try:
            limit = parse_duration(timeout)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--timeout") from None
    deadline = None if limit is None else time.monotonic() + limit
    reader = Reader(where.state_dir)
    pending = list(dict.fromkeys(jobs))
    ended: dict[int, JobRecord] = {}
    missing = 0
    pause = _POLL
    try:
        while True:
            for job in list(pending):
                record = reader.get(job)
                if record is None:
                    fail(f"no job {job} in {reader.path}", Exit.LOST)
                if record.state.terminal:
                    ended[job] = record
                    pending.remove(job)
                    if not quiet and len(jobs) > 1:
                        click.echo(f"job {job} {record.state} (exit code {_code(record)})", err=True)
            if not pending:
                break
            missing = 0 if serving(where.state_dir) else missing + 1
            if missing >= _GONE_CHECKS:
                fail(
                    f"job {pending[0]} is recorded live, but no daemon serves {where.state_dir} to end it "
                    "(start `hostpipe serve`; it will record how the job ended)",
                    Exit.NO_DAEMON,
                )
            if deadline is not None and time.monotonic() >= deadline:
                fail(f"--timeout passed before job {pending[0]} ended", Exit.TIMED_OUT)
            time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 1.5, _POLL_MAX)
    finally:
        reader.close()
    for job in dict.fromkeys(jobs):
        code = _code(ended[job])
        if code != Exit.OK:
            if not quiet:
                record = ended[job]
                click.echo(f"hostpipe: job {job} {record.state}: {escape(record.reason or '')}", err=True)
            sys.exit(code)
    sys.exit(Exit.OK)
