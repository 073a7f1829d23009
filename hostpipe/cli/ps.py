"""`hostpipe ps`: list job records, the newest 20 unless asked for more."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime

import click

from hostpipe.cli.common import Locations, errors_as_lines, locations
from hostpipe.cli.render import table
from hostpipe.core.job import JobState
from hostpipe.daemon.liveness import serving
from hostpipe.daemon.records import JobRecord, Reader

STATES = [state.value for state in JobState]
DEFAULT_LAST = 20


def parse_since(value: str, now: float) -> float:
    """A duration back from now (90s, 2h, 7d) or a local time (ISO 8601, or HH:MM[:SS] today)."""
    # Imported here: its patterns take a few milliseconds to compile, which a `ps` without --since need not pay.
    from hostpipe.core.durations import parse_duration  # noqa: PLC0415

    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            clock = datetime.strptime(value, "%H:%M:%S" if value.count(":") == 2 else "%H:%M")
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is neither a duration (90s, 2h, 7d) nor a time (2026-05-01T12:00, 12:00)",
                param_hint="--since",
            ) from None
        moment = datetime.fromtimestamp(now).replace(
            hour=clock.hour, minute=clock.minute, second=clock.second, microsecond=0
        )
    return moment.timestamp()


def terminal_width() -> int:
    """What shutil.get_terminal_size says (COLUMNS first, then the terminal), without importing shutil, which
    brings the compression modules along: a few milliseconds of every `ps`."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns or 80
    except OSError:
        return 80


@click.command()
@locations
@click.option("--pod", help="Only this pod (namespace/name).")
@click.option("--state", "states", multiple=True, type=click.Choice(STATES), help="Only these states (repeatable).")
@click.option("--id", "client_id", help="Only jobs the pod named so (HOSTPIPE_ID).")
@click.option("--since", metavar="DURATION|TIME", help="Only records submitted since: 90s, 2h, 7d, 12:00, an ISO time.")
@click.option("--last", type=click.IntRange(min=1), help=f"Only the newest N records [default: {DEFAULT_LAST}].")
@click.option("-a", "--all", "show_all", is_flag=True, help="Every matching record, not only the newest.")
@click.option("--no-trunc", is_flag=True, help="Never cut a column to the terminal's width.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of objects, for programs (streamed).")
@errors_as_lines
def ps(
    where: Locations,
    pod: str | None,
    states: tuple[str, ...],
    client_id: str | None,
    since: str | None,
    last: int | None,
    show_all: bool,
    no_trunc: bool,
    as_json: bool,
) -> None:
    """Show jobs, oldest first: pod, state, exit status, how long they ran, when they came, the line.

    Without --last or --all, the newest 20 matching records. A state followed by "? (no daemon)" is what the
    record says, but no daemon serves the state folder to end it.
    """
    if last is not None and show_all:
        raise click.UsageError("give --last or --all, not both")
    limit = None if show_all else (last or DEFAULT_LAST)
    reader = Reader(where.state_dir)
    try:
        records = reader.each(
            pod=pod,
            states=[JobState(s) for s in states] if states else None,
            client_id=client_id,
            limit=limit,
            since=parse_since(since, time.time()) if since is not None else None,
        )
        if as_json:
            _stream_json(records)
            return
        width = None if no_trunc or not sys.stdout.isatty() else terminal_width()
        click.echo(table(records, serving=serving(where.state_dir), width=width))
    finally:
        reader.close()


def _stream_json(records: Iterator[JobRecord]) -> None:
    """One JSON array, written a record at a time: a million records never sit in memory at once."""
    out = sys.stdout
    out.write("[")
    for count, record in enumerate(records):
        out.write((", " if count else "") + json.dumps(record.as_json()))
    out.write("]\n")
    out.flush()
