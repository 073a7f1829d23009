"""`hostpipe`: the command group. Each command's module is imported only when that command runs."""

from __future__ import annotations

import importlib
import sys

# structlog imports rich, when it is installed, for pretty tracebacks that hostpipe never shows: about 60 ms
# and 8 MB of every daemon's start-up and memory. asyncio loads OpenSSL for TLS, which hostpipe never speaks
# (its only sockets are a local unix socket and the notify datagram): about 1.2 MB. Marking both absent makes
# structlog and asyncio take their plain paths, as they do where these are not installed.
sys.modules.setdefault("rich", None)  # type: ignore[arg-type]
sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]

import click  # noqa: E402

from hostpipe import __version__  # noqa: E402

COMMANDS = {
    "serve": "hostpipe.cli.serve:serve",
    "status": "hostpipe.cli.status:status",
    "ps": "hostpipe.cli.ps:ps",
    "show": "hostpipe.cli.show:show",
    "wait": "hostpipe.cli.wait:wait",
    "logs": "hostpipe.cli.logs:logs",
    "cancel": "hostpipe.cli.cancel:cancel",
    "check": "hostpipe.cli.check:check",
    "clean": "hostpipe.cli.clean:clean",
    "submit": "hostpipe.cli.submit:submit_command",
    "install-service": "hostpipe.cli.install:install_service",
    "man": "hostpipe.cli.manpage:man",
}


class LazyGroup(click.Group):
    """Loads a command's module on first use, so the daemon does not carry the other commands' imports."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, name = target.split(":")
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="hostpipe")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Run the container commands that pods write into the host pipe, under a policy, and record each one."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main() -> None:
    cli(prog_name="hostpipe")


if __name__ == "__main__":
    main()
