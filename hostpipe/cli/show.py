"""`hostpipe show`: one job's record, every field, with wall-clock times."""

from __future__ import annotations

import json
import time

import click

from hostpipe.cli.common import Exit, Locations, errors_as_lines, fail, locations
from hostpipe.cli.escape import escape
from hostpipe.cli.render import duration, exit_status, ran_for, state_label, wall_clock
from hostpipe.core.exitcodes import job_exit_code
from hostpipe.daemon.liveness import serving
from hostpipe.daemon.records import JobRecord, Reader


def describe(record: JobRecord, *, serving: bool, now: float) -> list[tuple[str, str]]:
    """The record as (field, text) pairs, in the order a person reads them; pod text escaped."""
    fields: list[tuple[str, str | None]] = [
        ("id", str(record.id)),
        ("pod", record.pod),
        ("client id", record.client_id),
        ("state", state_label(record, serving)),
        ("exit", exit_status(record) if record.state.terminal else None),
        (
            "exit code of `wait`",
            str(job_exit_code(str(record.state), record.exit_code, record.signal)) if record.state.terminal else None,
        ),
        ("rule", record.rule),
        ("argument", record.argument),
        ("reason", record.reason),
        ("line", record.line),
        ("last line", record.last_line),
        ("lines", str(record.lines) if record.lines is not None else None),
        ("argv", json.dumps(record.argv) if record.argv is not None else None),
        ("runtime", record.runtime),
        ("image", record.image),
        ("pid", str(record.pid) if record.pid is not None else None),
        ("container id", record.container_id),
        ("detached", "yes" if record.detached else None),
        ("timeout", duration(record.timeout) if record.timeout is not None else None),
        ("submitted", wall_clock(record.submitted_at)),
        ("start attempt", wall_clock(record.start_attempt) if record.start_attempt is not None else None),
        ("started", wall_clock(record.started_at) if record.started_at is not None else None),
        ("ended", wall_clock(record.ended_at) if record.ended_at is not None else None),
        ("elapsed", duration(ran_for(record, now)) if record.started_at is not None else None),
        ("log", record.log),
        ("log dropped", f"{record.log_dropped} bytes at the log cap" if record.log_dropped else None),
    ]
    return [(name, escape(value)) for name, value in fields if value is not None]


@click.command()
@locations
@click.argument("job", type=int)
@click.option("--json", "as_json", is_flag=True, help="The record as one JSON object (the shape of `ps --json`).")
@errors_as_lines
def show(where: Locations, job: int, as_json: bool) -> None:
    """Show every field of job JOB's record: its line, state, exit status, full reason, times and log path."""
    reader = Reader(where.state_dir)
    try:
        record = reader.get(job)
    finally:
        reader.close()
    if record is None:
        fail(f"no job {job} in {reader.path}", Exit.NO)
    if as_json:
        click.echo(json.dumps(record.as_json()))
        return
    pairs = describe(record, serving=serving(where.state_dir), now=time.time())
    width = max(len(name) for name, _ in pairs)
    click.echo("\n".join(f"{name + ':':<{width + 1}} {value}" for name, value in pairs))
