"""`hostpipe ps`: list job records."""

from __future__ import annotations

import json

import click

from hostpipe.cli.common import Locations, errors_as_lines, locations
from hostpipe.cli.render import table
from hostpipe.core.job import JobState
from hostpipe.daemon.records import Reader

STATES = [state.value for state in JobState]


@click.command()
@locations
@click.option("--pod", help="Only this pod (namespace/name).")
@click.option("--state", "states", multiple=True, type=click.Choice(STATES), help="Only these states (repeatable).")
@click.option("--id", "client_id", help="Only jobs the pod named so (HOSTPIPE_ID).")
@click.option("--last", type=click.IntRange(min=1), help="Only the newest N records.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of objects, for programs.")
@errors_as_lines
def ps(
    where: Locations,
    pod: str | None,
    states: tuple[str, ...],
    client_id: str | None,
    last: int | None,
    as_json: bool,
) -> None:
    """Show jobs: pod, state, exit status, how long they ran, age."""
    reader = Reader(where.state_dir)
    try:
        records = reader.jobs(
            pod=pod,
            states=[JobState(s) for s in states] if states else None,
            client_id=client_id,
            limit=last,
        )
    finally:
        reader.close()
    if as_json:
        click.echo(json.dumps([record.as_json() for record in records]))
    else:
        click.echo(table(records))
