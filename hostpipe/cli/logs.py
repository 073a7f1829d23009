"""`hostpipe logs`: a job's output (stdout and stderr), or every job's of a pod.

On a terminal the output is escaped (`hostpipe.cli.escape`): a job's log is the pod's text. Into a file or a
pipe it is copied byte for byte. Bytes dropped at the log cap are shown as one marker line, never as zeros.
`logs -f` ends with the job's own exit code, as `hostpipe wait` does, and stops (exit 120) when no daemon
serves the state folder any more, since then nothing will end the job's record.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import BinaryIO

import click

from hostpipe.cli.common import Exit, Locations, errors_as_lines, fail, locations
from hostpipe.cli.escape import TerminalWriter, escape
from hostpipe.cli.render import exit_status
from hostpipe.core.exitcodes import job_exit_code
from hostpipe.daemon.liveness import serving
from hostpipe.daemon.logholes import copy_kept
from hostpipe.daemon.records import JobRecord, Reader

_POLL = 0.2
_GONE_CHECKS = 3
"""How many polls in a row must find no daemon before `logs -f` gives up (the holder keeps the lock across a
daemon's restart, so one look is nearly always enough; three ride out a start that is just taking the lock)."""


class _Output:
    def __init__(self) -> None:
        raw = sys.stdout.buffer
        self.escaped = sys.stdout.isatty()
        self.stream: BinaryIO | TerminalWriter = TerminalWriter(raw) if self.escaped else raw

    def copy(self, path: Path, offset: int) -> int:
        """Write what the log holds past `offset`; return the new offset."""
        offset = copy_kept(path, offset, self.stream)  # type: ignore[arg-type]
        self.stream.flush()
        return offset

    def close(self) -> None:
        if isinstance(self.stream, TerminalWriter):
            self.stream.close()
        else:
            self.stream.flush()


def _follow(reader: Reader, record: JobRecord, state_dir: Path, out: _Output) -> int:
    offset = 0
    missing = 0
    while True:
        current = reader.get(record.id) or record
        if current.log:
            offset = out.copy(Path(current.log), offset)
        if current.state.terminal:
            if current.log:
                out.copy(Path(current.log), offset)
            out.close()
            code = job_exit_code(str(current.state), current.exit_code, current.signal)
            if code != Exit.OK:
                click.echo(f"hostpipe: job {current.id} {current.state}: {escape(current.reason or '')}", err=True)
            return code
        missing = 0 if serving(state_dir) else missing + 1
        if missing >= _GONE_CHECKS:
            out.close()
            fail(
                f"job {current.id} is recorded {current.state}, but no daemon serves {state_dir}: it stopped or "
                "died, and the next `hostpipe serve` will record how the job ended",
                Exit.NO_DAEMON,
            )
        time.sleep(_POLL)


def _banner(record: JobRecord) -> str:
    return escape(f"==> job {record.id} {record.state} exit {exit_status(record)}: {record.line} <==")


@click.command()
@locations
@click.argument("job", type=int, required=False)
@click.option("--pod", help="Every job of this pod (namespace/name), oldest first.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing while the job runs; exit with the job's code.")
@errors_as_lines
def logs(where: Locations, job: int | None, pod: str | None, follow: bool) -> None:
    """Print a job's log, or the logs of all jobs of a pod.

    On a terminal, control characters in the log are shown as escapes; into a file or a pipe the log is copied
    exactly. With -f, follow the log until the job ends and exit with the job's exit code (as `hostpipe wait`).
    """
    if (job is None) == (pod is None):
        fail("give a JOB id or --pod, not both", Exit.USAGE)
    reader = Reader(where.state_dir)
    out = _Output()
    try:
        if job is not None:
            record = reader.get(job)
            if record is None:
                fail(f"no job {job} in {reader.path}", Exit.NO)
            if record.log is None and record.state.terminal:
                fail(f"job {job} has no log: {record.state}: {escape(record.reason or '')}", Exit.NO)
            if follow:
                sys.exit(_follow(reader, record, where.state_dir, out))
            elif record.log:
                out.copy(Path(record.log), 0)
            return
        for record in reader.jobs(pod=pod):
            click.echo(_banner(record))
            if record.log:
                out.copy(Path(record.log), 0)
            elif record.reason:
                click.echo(escape(f"({record.rule or record.state}: {record.reason})"))
    finally:
        out.close()
        reader.close()
