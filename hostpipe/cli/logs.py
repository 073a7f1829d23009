"""`hostpipe logs`: a job's output (stdout and stderr), or every job's of a pod."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from hostpipe.cli.common import Exit, Locations, errors_as_lines, fail, locations
from hostpipe.cli.render import exit_status
from hostpipe.daemon.records import JobRecord, Reader

_POLL = 0.2


def _copy(path: Path, offset: int) -> int:
    """Write what the file holds past `offset` to stdout; return the new offset."""
    try:
        with path.open("rb") as source:
            source.seek(offset)
            while chunk := source.read(1 << 16):
                sys.stdout.buffer.write(chunk)
                offset += len(chunk)
    except FileNotFoundError:
        return offset
    sys.stdout.buffer.flush()
    return offset


def _follow(reader: Reader, record: JobRecord) -> None:
    offset = 0
    while True:
        current = reader.get(record.id) or record
        if current.log:
            offset = _copy(Path(current.log), offset)
        if current.state.terminal:
            if current.log:
                _copy(Path(current.log), offset)
            return
        time.sleep(_POLL)


def _banner(record: JobRecord) -> str:
    return f"==> job {record.id} {record.state} exit {exit_status(record)}: {record.line} <=="


@click.command()
@locations
@click.argument("job", type=int, required=False)
@click.option("--pod", help="Every job of this pod (namespace/name), oldest first.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing while the job runs.")
@errors_as_lines
def logs(where: Locations, job: int | None, pod: str | None, follow: bool) -> None:
    """Print a job's log, or the logs of all jobs of a pod."""
    if (job is None) == (pod is None):
        fail("give a JOB id or --pod, not both", Exit.USAGE)
    reader = Reader(where.state_dir)
    try:
        if job is not None:
            record = reader.get(job)
            if record is None:
                fail(f"no job {job} in {reader.path}", Exit.NO)
            if record.log is None and record.state.terminal:
                fail(f"job {job} has no log: {record.state}: {record.reason}", Exit.NO)
            if follow:
                _follow(reader, record)
            elif record.log:
                _copy(Path(record.log), 0)
            return
        for record in reader.jobs(pod=pod):
            click.echo(_banner(record))
            if record.log:
                _copy(Path(record.log), 0)
            elif record.reason:
                click.echo(f"({record.rule or record.state}: {record.reason})")
    finally:
        reader.close()
