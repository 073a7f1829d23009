"""`hostpipe submit`: hand a command to hostpipe through the pipe, from inside a pod, and get its result back.

The library call is `hostpipe.daemon.replyclient.submit`; the published sh client (`bin/hostpipe-submit` in
the pipe's folder) takes the same options for pods without Python. Its exit codes are those of a command that
stands in for a job (`hostpipe.core.exitcodes`): the job's own, or 120-125 for hostpipe's outcomes, usage
errors included (125, not click's 2, so that a pod's status never mistakes them for the job's).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from hostpipe.core.exitcodes import Exit
from hostpipe.core.replies import KEY_HEX, ReplyKey
from hostpipe.daemon import paths
from hostpipe.daemon.replyclient import Request, pod_from_environment, submit


class _UsageError(click.UsageError):
    exit_code = Exit.CLIENT_ERROR


class _SubmitCommand(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            raise _UsageError(error.format_message(), error.ctx) from None


def _note(text: str) -> None:
    click.echo(f"hostpipe: {text}")


@click.command(cls=_SubmitCommand, context_settings={"allow_interspersed_args": False})
@click.option("--wait", is_flag=True, help="Print the job's output while it runs; exit with its exit code.")
@click.option("--pod", metavar="NS/NAME", help="The pod the job is filed under [default: $POD_NAMESPACE/$POD_NAME].")
@click.option("--id", "client_id", metavar="ID", help="The pod's own name for the job.")
@click.option("--timeout", metavar="DURATION", help="Seconds, or 90s, 15m, 2h, 1d (capped by the host's policy).")
@click.option(
    "--key-file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="HOSTPIPE_KEY_FILE",
    help="Keep the reply key in this file: run again, the client attaches to the job it submitted before.",
)
@click.option("--attach", metavar="KEY", help="Attach to the job submitted with KEY (implies --wait).")
@click.option(
    "--pipe",
    type=click.Path(path_type=Path),
    envvar="HOSTPIPE_PIPE",
    help="The pipe [default: $HOSTPIPE_PIPE, or ~/hostpipe/vk-cmd].",
)
@click.option(
    "--no-daemon-after",
    "patience",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    metavar="SECONDS",
    help="Give up (exit 120) when no daemon has answered for this long.",
)
@click.option("-v", "--verbose", is_flag=True, help="Say what happens (on stdout).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def submit_command(command: tuple[str, ...], attach: str | None, **options: Any) -> None:
    """Hand COMMAND to hostpipe on the host as one request through the pipe.

    Without --wait, wait until the daemon has taken it (refused: the reason, exit 122) and print its reply key.
    With --wait, print the job's output while it runs and exit with the job's exit code. A TERM, INT or HUP
    cancels the job.
    """
    if attach is not None:
        if command:
            raise _UsageError("--attach takes no command: it attaches to the job submitted with the key")
        parsed = ReplyKey.parse(attach)
        if parsed is None or parsed.token is None or len(attach) != KEY_HEX:
            raise _UsageError("--attach takes a reply key of 64 hex digits")
    elif not command:
        raise _UsageError("give the command to run after --")
    request = Request(
        pipe=(options["pipe"] or paths.default_pipe()).expanduser(),
        argv=command,
        pod=options["pod"] or pod_from_environment(dict(os.environ)),
        client_id=options["client_id"],
        timeout=options["timeout"],
        wait=options["wait"],
        attach=attach,
        key_file=options["key_file"],
        patience=options["patience"],
        verbose=options["verbose"],
    )
    code, message = submit(request, note=_note if request.verbose else None)
    if message:
        click.echo(f"hostpipe: {message}", err=True)
    sys.exit(code)
