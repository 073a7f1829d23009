"""`hostpipe cancel`: stop a job, or every live job of a pod, through the running daemon."""

from __future__ import annotations

import click

from hostpipe.cli.common import Exit, Locations, errors_as_lines, fail, locations
from hostpipe.daemon import controlclient as control
from hostpipe.daemon.paths import control_socket


@click.command()
@locations
@click.argument("job", type=int, required=False)
@click.option("--pod", help="Every queued or running job of this pod (namespace/name).")
@errors_as_lines
def cancel(where: Locations, job: int | None, pod: str | None) -> None:
    """Stop jobs: SIGTERM to the process group, SIGKILL after the policy's kill_grace. Recorded as cancelled."""
    if (job is None) == (pod is None):
        fail("give a JOB id or --pod, not both", Exit.USAGE)
    payload = {"op": "cancel", "job": job} if job is not None else {"op": "cancel", "pod": pod}
    reply = control.request(control_socket(where.state_dir), payload)
    if not reply.get("ok"):
        fail(str(reply.get("error", "the daemon refused")))
    stopped = reply.get("cancelled", [])
    if not stopped:
        fail("nothing to cancel: no such job is queued or running", Exit.NO)
    for job_id in stopped:
        click.echo(f"cancelling job {job_id}")
