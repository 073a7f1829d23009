"""`hostpipe serve`: run the daemon in the foreground.

Under a service manager that passes the FIFO (socket activation), the daemon runs in this process and the
manager keeps the pipe. Otherwise this process becomes the holder (`hostpipe.daemon.holder`), which keeps the
pipe open and runs the daemon as its child, restarting it if it dies.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import NoReturn

import click

from hostpipe.cli.common import Locations, errors_as_lines, locations
from hostpipe.cli.metrics_options import MetricsOptions, metrics_options


def _octal(value: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError as error:
        raise click.BadParameter(f"{value!r} is not an octal mode like 600") from error
    if not 0 <= mode <= 0o777:
        raise click.BadParameter(f"{value!r} is not a permission mode")
    return mode


def _checked_modes(pipe_mode: str, folder_mode: str) -> tuple[int, int]:
    """A pipe any user could read (taking other pods' lines, reply keys and all) is refused, and so are execute
    bits, which mean nothing on a FIFO and point to a mistyped mode. A pipe others may write (pods that run as
    another user need it: docs/submit.md) is the site's choice, said plainly on stderr."""
    pipe_bits, folder_bits = _octal(pipe_mode), _octal(folder_mode)
    if pipe_bits & 0o004 or pipe_bits & 0o111:
        raise click.BadParameter(
            f"{pipe_mode} lets other users read the pipe (taking other pods' lines) or sets execute bits, which "
            "a FIFO has no use for; give 600 (the daemon's user only), 620 (and its group writes) or 622 (every "
            "user writes)",
            param_hint="--pipe-mode",
        )
    if folder_bits & 0o002:
        raise click.BadParameter(
            f"{folder_mode} lets every user replace the pipe in its folder; give 700, 710 or 711",
            param_hint="--folder-mode",
        )
    if pipe_bits & 0o002:
        click.echo(f"hostpipe: warning: --pipe-mode {pipe_mode}: every user on this host can write lines", err=True)
    elif pipe_bits & 0o060:
        click.echo(f"hostpipe: warning: --pipe-mode {pipe_mode}: the pipe's group can write or read lines", err=True)
    return pipe_bits, folder_bits


def _detach(where: Locations, ready_timeout: float) -> NoReturn:
    from hostpipe.daemon.detach import detach  # noqa: PLC0415

    argv = [sys.executable, "-P", "-m", "hostpipe", *(arg for arg in sys.argv[1:] if arg != "--detach")]
    result = detach(argv, state_dir=where.state_dir, environ=os.environ, ready_timeout=ready_timeout)
    click.echo(f"hostpipe: {result.message}", err=result.code != 0)
    sys.exit(result.code)


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
@click.option(
    "--detach",
    is_flag=True,
    help="Run in the background (log and pid file in the state folder); return once the pipe is ready.",
)
@click.option(
    "--ready-timeout",
    type=click.FloatRange(min=1),
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="With --detach: how long to wait for the pipe to be ready.",
)
@errors_as_lines
def serve(
    where: Locations,
    max_concurrent: int | None,
    log_format: str,
    pipe_mode: str,
    folder_mode: str,
    metrics: MetricsOptions,
    detach: bool,
    ready_timeout: float,
) -> None:
    """Create the pipe and serve it until SIGTERM or SIGINT.

    With --detach, start in the background instead: exit 0 once the pipe is ready, or non-zero with the
    reason it could not start (3: a configuration error; 4: another daemon serves the state folder).
    """
    pipe_bits, folder_bits = _checked_modes(pipe_mode, folder_mode)
    if detach:
        _detach(where, ready_timeout)
    from hostpipe.daemon.holder import HOLDER_SOCKET, Holder  # noqa: PLC0415 - light: no event loop, no models

    def logs() -> None:
        # structlog (and the asyncio it imports) is loaded after the first step on the way to ready: the daemon's
        # start in the holder, the writer's start in the daemon.
        from hostpipe.daemon.logs import configure  # noqa: PLC0415

        configure(log_format)  # type: ignore[arg-type]

    if HOLDER_SOCKET not in os.environ and not _socket_activated():
        holder = Holder(
            on_started=logs,
            state_dir=where.state_dir,
            # -P: the daemon's hostpipe comes from the installation, never from the working folder (run from
            # HOME, `hostpipe/` there is the pipe folder pods can write).
            daemon_argv=[sys.executable, "-P", "-m", "hostpipe", *sys.argv[1:]],
            environ=os.environ,
        )
        sys.exit(holder.run())
    writer = None
    if HOLDER_SOCKET in os.environ:
        # The holder holds the state folder's lock: the store's writer starts now and starts up while the
        # daemon imports the rest (see writerproc); without a holder the daemon takes the lock first.
        from hostpipe.daemon.schema import DB_NAME  # noqa: PLC0415
        from hostpipe.daemon.writerproc import start_writer  # noqa: PLC0415

        with contextlib.suppress(OSError):
            writer = start_writer(where.state_dir.absolute() / DB_NAME)
    logs()
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
    asyncio.run(Server(config, writer=writer).run())
