"""`hostpipe clean`: remove records and job logs older than the retention, now rather than at the next sweep."""

from __future__ import annotations

import json

import click

from hostpipe.cli.common import Exit, Locations, errors_as_lines, fail, locations
from hostpipe.core.durations import format_duration, parse_duration
from hostpipe.daemon import controlclient as control
from hostpipe.daemon.paths import control_socket
from hostpipe.daemon.policyfile import load_policy
from hostpipe.daemon.retention import Swept, clean_directly

_TIMEOUT = 3600.0
"""How long the command waits for the daemon's sweep, which goes a batch at a time beside the pipe's lines."""


def _older_than(value: str | None, where: Locations) -> float:
    if value is not None:
        try:
            return parse_duration(value)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--older-than") from None
    retention = load_policy(where.policy, {}, required=where.policy_given).policy.retention
    if not retention:
        fail("the policy keeps records for ever (retention = 0); say how old with --older-than", Exit.USAGE)
    return retention


@click.command()
@locations
@click.option("--older-than", "older_than", metavar="DURATION", help="Instead of the policy's retention: 90s, 2h, 7d.")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as one JSON object.")
@errors_as_lines
def clean(where: Locations, older_than: str | None, as_json: bool) -> None:
    """Remove records and logs of jobs that ended longer ago than the retention (or --older-than).

    Records of queued and running jobs stay. With a daemon running, it does the work; otherwise this command
    does, holding the state folder's lock so that no daemon starts meanwhile.
    """
    seconds = _older_than(older_than, where)
    try:
        reply = control.request(
            control_socket(where.state_dir), {"op": "clean", "older_than": seconds}, timeout=_TIMEOUT
        )
    except control.ControlError:
        swept = clean_directly(where.state_dir, seconds)
    else:
        if not reply.get("ok"):
            fail(str(reply.get("error", "the daemon refused")))
        swept = Swept(**{key: int(reply.get(key, 0)) for key in ("records", "logs", "bytes")})
    if as_json:
        click.echo(json.dumps({**swept.as_dict(), "older_than": seconds}))
        return
    click.echo(
        f"removed {swept.records} records and {swept.logs} logs ({swept.bytes} bytes) "
        f"older than {format_duration(seconds)}"
    )
