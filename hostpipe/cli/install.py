"""`hostpipe install-service`: install and start hostpipe as a systemd user service for the current user."""

from __future__ import annotations

import os

import click

from hostpipe.cli.common import Exit, fail
from hostpipe.daemon.units import (
    LINGER_DIR,
    InstallError,
    current_user,
    enable_and_start,
    linger,
    running_hostpipe,
    write_units,
)


def _say_linger(user: str) -> None:
    state = linger(user)
    if state:
        click.echo(f"linger: on for {user}: the service starts at boot and runs without a login session")
        return
    how = f"loginctl enable-linger {user}"
    if state is None:
        click.echo(f"linger: unknown (neither logind nor /var/lib/systemd/linger answered); to turn it on: {how}")
    else:
        click.echo(
            f"linger: off for {user}: the service stops when your last session ends and does not start at boot; "
            f"to keep it running: {how} (an administrator may have to run it; where logind does not run, "
            f"root can create the file {LINGER_DIR / user})"
        )


@click.command("install-service")
@click.option("--no-start", is_flag=True, help="Only write the unit files; do not reload, enable or start them.")
@click.option(
    "--strict",
    is_flag=True,
    help="Add the strict hardening drop-in (no setuid, no new namespaces: not for rootless podman, "
    "apptainer's setuid mode or shifter).",
)
def install_service(no_start: bool, strict: bool) -> None:
    """Install hostpipe.socket and hostpipe.service for the current user and start them.

    ExecStart= runs this very hostpipe (pipx, venv or checkout), and the service gets this shell's PATH in a
    drop-in, so it finds the runtimes this shell finds. Says whether linger is on.
    """
    try:
        installed = write_units(command=running_hostpipe(), path=os.environ.get("PATH", ""), strict=strict)
    except (InstallError, OSError) as error:
        fail(f"cannot write the unit files: {error}", Exit.UNAVAILABLE)
    for path in installed.written:
        click.echo(f"wrote {path}")
    if installed.path_dropped:
        left_out = ", ".join(repr(entry) for entry in installed.path_dropped)
        click.echo(f"PATH: left out {left_out} (not absolute folders)")
    if installed.strict and not strict:
        click.echo(f"kept the strict drop-in {installed.folder / 'hostpipe.service.d' / 'strict.conf'}")
    if no_start:
        click.echo(
            "not started; to start: systemctl --user daemon-reload && "
            "systemctl --user enable --now hostpipe.socket hostpipe.service"
        )
    else:
        try:
            was_running = enable_and_start()
        except InstallError as error:
            fail(f"{error}; the unit files are written", Exit.UNAVAILABLE)
        click.echo("enabled and started hostpipe.socket and hostpipe.service")
        if was_running:
            click.echo(
                "hostpipe.service was already running and still runs its old unit: "
                "`systemctl --user restart hostpipe` when no job needs it (running jobs are stopped)"
            )
    _say_linger(current_user())
