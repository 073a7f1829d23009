"""`hostpipe serve`: run the daemon in the foreground.

Under a service manager that passes the FIFO (socket activation), the daemon runs in this process and the
manager keeps the pipe. Otherwise this process becomes the holder (`hostpipe.daemon.holder`), which keeps the
pipe open and runs the daemon as its child, restarting it if it dies.
"""

from __future__ import annotations

import os
import sys

import click

from hostpipe.cli.common import Locations, errors_as_lines, locations
from hostpipe.cli.metrics_options import MetricsOptions, metrics_options
from hostpipe.daemon.logs import configure


def _octal(value: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError as error:
        raise click.BadParameter(f"{value!r} is not an octal mode like 600") from error
    if not 0 <= mode <= 0o777:
        raise click.BadParameter(f"{value!r} is not a permission mode")
    return mode


def _socket_activated() -> bool:
    return os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS", "0") != "0"


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
@metrics_options
@errors_as_lines
def serve(
    where: Locations,
    max_concurrent: int | None,
    log_format: str,
    pipe_mode: str,
    folder_mode: str,
    metrics: MetricsOptions,
) -> None:
    """Create the pipe and serve it until SIGTERM or SIGINT."""
    configure(log_format)  # type: ignore[arg-type]
    pipe_bits, folder_bits = _octal(pipe_mode), _octal(folder_mode)
    from hostpipe.daemon.holder import HOLDER_SOCKET, Holder  # noqa: PLC0415 - light: no event loop, no models

    if HOLDER_SOCKET not in os.environ and not _socket_activated():
        holder = Holder(
            state_dir=where.state_dir,
            # -P: the daemon's hostpipe comes from the installation, never from the working folder (run from
            # HOME, `hostpipe/` there is the pipe folder pods can write).
            daemon_argv=[sys.executable, "-P", "-m", "hostpipe", *sys.argv[1:]],
            environ=os.environ,
        )
        sys.exit(holder.run())
    import asyncio  # noqa: PLC0415 - only the daemon process needs the event loop

    from hostpipe.daemon.server import ServeConfig, Server  # noqa: PLC0415

    config = ServeConfig(
        pipe=where.pipe,
        state_dir=where.state_dir,
        policy=where.policy,
        policy_required=where.policy_given,
        max_concurrent=max_concurrent,
        pipe_mode=pipe_bits,
        folder_mode=folder_bits,
        metrics_textfile=metrics.textfile,
        metrics_address=metrics.address,
    )
    asyncio.run(Server(config).run())
