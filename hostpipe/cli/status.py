"""`hostpipe status`: is a daemon serving this pipe, since when, under which policy, and what the records say.

It asks the daemon over the control socket and reads the records itself; with no daemon it still answers
(from the records and the state folder's lock), says so, and exits 120, as a client that found no daemon does.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from hostpipe.cli.common import Exit, Locations, errors_as_lines, locations
from hostpipe.cli.escape import escape
from hostpipe.cli.render import duration, wall_clock
from hostpipe.core.job import JobState
from hostpipe.daemon.controlclient import ControlError, request
from hostpipe.daemon.liveness import lock_holder
from hostpipe.daemon.paths import control_socket
from hostpipe.daemon.records import Reader
from hostpipe.daemon.schema import StoreError

WINDOW = 86400.0
"""Counts by state cover the records of the last day."""
CAP = 10_000
"""Each count stops here (shown as 10000+), so a flood of refused lines cannot make `status` slow."""
RECENT = 5


def gather(where: Locations) -> dict[str, Any]:
    """Everything `status` shows, as data (`--json` prints it as it is)."""
    out: dict[str, Any] = {"pipe": str(where.pipe), "state_dir": str(where.state_dir), "daemon": None}
    holder = lock_holder(where.state_dir)
    out["lock_held"] = holder is not None
    out["lock_pid"] = holder.pid if holder else None
    try:
        reply = request(control_socket(where.state_dir), {"op": "status"}, timeout=5)
    except (ControlError, OSError):
        reply = None
    if reply and reply.get("ok"):
        out["daemon"] = {key: value for key, value in reply.items() if key != "ok"}
    try:
        reader = Reader(where.state_dir)
    except StoreError as error:
        out["records"] = {"error": str(error)}
        return out
    try:
        now = time.time()
        out["records"] = {
            "path": str(reader.path),
            "schema": reader.version,
            "since": now - WINDOW,
            "counts": reader.counts(since=now - WINDOW, cap=CAP),
            "cap": CAP,
            "recent_refusals": [
                {key: record.as_json()[key] for key in ("id", "pod", "rule", "reason", "submitted_at", "lines")}
                for record in reader.newest(JobState.REFUSED, RECENT)
            ],
        }
    finally:
        reader.close()
    return out


def render(status: dict[str, Any], now: float) -> str:
    lines = []
    daemon = status["daemon"]
    if daemon is not None:
        serves = daemon.get("pipe")
        started = daemon.get("started_at")
        held = status["lock_pid"]
        holder = f", holder {held}" if held and held != daemon.get("pid") else ""
        lines.append(
            f"daemon:   serving (pid {daemon.get('pid')}{holder}) since {wall_clock(started)}"
            f" ({duration(now - started) if started else '-'})"
        )
        if serves and serves != status["pipe"]:
            lines.append(f"pipe:     {serves} (not {status['pipe']}: this state folder's daemon serves another pipe)")
        else:
            lines.append(f"pipe:     {status['pipe']}")
        lines.append(f"policy:   {daemon.get('policy')}")
        lines.append(f"store:    {daemon.get('store')}; intake {daemon.get('intake')}")
        lines.append(f"jobs:     {daemon.get('running')} running, {daemon.get('queued')} queued")
    elif status["lock_held"]:
        lines.append(
            f"daemon:   pid {status['lock_pid'] or '?'} holds {status['state_dir']} but does not answer on its control "
            "socket: it is starting, restarting, or stuck"
        )
    else:
        lines.append(f"daemon:   no daemon serves {status['state_dir']} (start one with `hostpipe serve --detach`)")
        lines.append(f"pipe:     {status['pipe']}")
    records = status.get("records", {})
    if "error" in records:
        lines.append(f"records:  {records['error']}")
        return "\n".join(lines)
    lines.append(f"records:  {records['path']} (schema {records['schema']})")
    cap = records["cap"]
    counts = ", ".join(f"{count}{'+' if count >= cap else ''} {state}" for state, count in records["counts"].items())
    lines.append(f"last day: {counts or 'no records'}")
    refusals = records["recent_refusals"]
    if refusals:
        lines.append("recent refusals:")
        for refusal in refusals:
            many = f" [{refusal['lines']} lines]" if refusal["lines"] else ""
            lines.append(
                escape(
                    f"  {refusal['id']}  {wall_clock(refusal['submitted_at'])}  {refusal['pod'] or '-'}{many}  "
                    f"{refusal['rule']}: {refusal['reason']}"
                )
            )
    return "\n".join(lines)


@click.command()
@locations
@click.option("--json", "as_json", is_flag=True, help="Everything as one JSON object.")
@errors_as_lines
def status(where: Locations, as_json: bool) -> None:
    """Say whether a daemon serves the pipe (pid, since when, policy, store health), with counts by state over
    the last day and the latest refusals. Exit 0 with a daemon, 120 without one."""
    found = gather(where)
    if as_json:
        click.echo(json.dumps(found))
    else:
        click.echo(render(found, time.time()))
    sys.exit(Exit.OK if found["daemon"] is not None else Exit.NO_DAEMON)
