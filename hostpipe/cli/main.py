"""`hostpipe`: the command group."""

from __future__ import annotations

import click

from hostpipe import __version__
from hostpipe.cli.cancel import cancel
from hostpipe.cli.check import check
from hostpipe.cli.logs import logs
from hostpipe.cli.ps import ps
from hostpipe.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="hostpipe")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Run the container commands that pods write into the host pipe, under a policy, and record each one."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


for command in (serve, ps, logs, cancel, check):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="hostpipe")


if __name__ == "__main__":
    main()
