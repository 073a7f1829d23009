"""`hostpipe serve`: run the daemon in the foreground."""

from __future__ import annotations

import asyncio

import click

from hostpipe.cli.common import Locations, errors_as_lines, locations
from hostpipe.daemon.logs import configure
from hostpipe.daemon.server import ServeConfig, Server


def _octal(value: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError as error:
        raise click.BadParameter(f"{value!r} is not an octal mode like 600") from error
    if not 0 <= mode <= 0o777:
        raise click.BadParameter(f"{value!r} is not a permission mode")
    return mode


@click.command()
@locations
@click.option("--max-concurrent", type=click.IntRange(min=1), help="Jobs running at once (overrides the policy).")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default="auto",
    show_default=True,
    help="auto: JSON lines unless stderr is a terminal.",
)
@click.option("--pipe-mode", default="600", show_default=True, help="Permissions of the FIFO (octal).")
@click.option("--folder-mode", default="700", show_default=True, help="Permissions of a folder it creates (octal).")
@click.option(
    "--line-gap",
    type=click.FloatRange(min=0.001, max=10),
    default=0.1,
    show_default=True,
    help="Seconds of quiet after which bytes without a newline are a whole line.",
)
@errors_as_lines
def serve(
    where: Locations,
    max_concurrent: int | None,
    log_format: str,
    pipe_mode: str,
    folder_mode: str,
    line_gap: float,
) -> None:
    """Create the pipe and serve it until SIGTERM or SIGINT."""
    configure(log_format)  # type: ignore[arg-type]
    config = ServeConfig(
        pipe=where.pipe,
        state_dir=where.state_dir,
        policy=where.policy,
        policy_required=where.policy_given,
        max_concurrent=max_concurrent,
        pipe_mode=_octal(pipe_mode),
        folder_mode=_octal(folder_mode),
        line_gap=line_gap,
    )
    asyncio.run(Server(config).run())
