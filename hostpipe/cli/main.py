"""`hostpipe`: the command group."""

from __future__ import annotations

import sys

# structlog imports rich, when it is installed, for pretty tracebacks that hostpipe never shows: about 60 ms
# and 8 MB of every daemon's start-up and memory. Marking it absent makes structlog take its plain paths.
sys.modules.setdefault("rich", None)  # type: ignore[arg-type]

import click  # noqa: E402

from hostpipe import __version__  # noqa: E402
from hostpipe.cli.cancel import cancel  # noqa: E402
from hostpipe.cli.check import check  # noqa: E402
from hostpipe.cli.logs import logs  # noqa: E402
from hostpipe.cli.ps import ps  # noqa: E402
from hostpipe.cli.serve import serve  # noqa: E402


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
