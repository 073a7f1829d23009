"""`hostpipe check`: what the daemon would do with a line, without running anything."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from hostpipe.cli.common import Exit, Locations, errors_as_lines, fail, locations
from hostpipe.cli.escape import escape
from hostpipe.core.evaluate import Evaluation, evaluate
from hostpipe.core.grammar import Expansions
from hostpipe.core.policy import Allowed
from hostpipe.daemon.exposure import guard
from hostpipe.daemon.host import RealHost
from hostpipe.daemon.paths import home
from hostpipe.daemon.policyfile import load_policy


def _as_json(result: Evaluation) -> dict[str, Any]:
    decision = result.decision
    out: dict[str, Any] = {"line": result.line, "allowed": isinstance(decision, Allowed), "pod": result.pod}
    if isinstance(decision, Allowed):
        out.update(runtime=decision.runtime, image=decision.image, argv=list(decision.argv), timeout=decision.timeout)
    else:
        out.update(rule=decision.rule, argument=decision.argument, reason=decision.reason)
    return out


def _as_text(result: Evaluation) -> str:
    decision = result.decision
    if isinstance(decision, Allowed):
        added = f"\n  hostpipe adds: {' '.join(decision.added)}" if decision.added else ""
        image = escape(decision.image or "-")
        return (
            f"allowed  {escape(result.line)}\n  runtime {decision.runtime}, image {image}{escape(added, keep=chr(10))}"
        )
    text = f"refused  {escape(result.line)}\n  rule: {decision.rule}"
    if decision.argument is not None:
        text += f"\n  argument: {escape(decision.argument)}"
    return text + f"\n  reason: {escape(decision.reason)}"


def _lines(given: tuple[str, ...], file: Path | None, skip_comments: bool) -> list[bytes]:
    """The lines to decide. Read from a file or stdin, every line is one, as the daemon takes them from the pipe:
    a blank or comment-only line is recorded there as refused (empty-line), so it is reported so here, unless
    --skip-comments asks to read the file as a listing."""
    if given and file is not None:
        fail("give LINE arguments or --file, not both", Exit.USAGE)
    if given:
        return [line.encode() for line in given]
    try:
        source = sys.stdin.buffer.read() if file is None or str(file) == "-" else file.read_bytes()
    except OSError as error:
        fail(f"cannot read the lines to check from {file}: {error.strerror or error}", Exit.USAGE)
    lines = source.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line starts no line of its own
    if skip_comments:
        lines = [line for line in lines if line.strip() and not line.lstrip().startswith(b"#")]
    if not lines:
        fail("no lines to check" + (" (only blank lines and comments)" if skip_comments else ""), Exit.USAGE)
    return lines


@click.command()
@locations
@click.argument("line", nargs=-1)
@click.option(
    "--file", type=click.Path(path_type=Path), help="One line per line ('-' for stdin), as the pipe reads them."
)
@click.option(
    "--skip-comments", is_flag=True, help="Leave out blank and # lines (the daemon would record them as refused)."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array of decisions.")
@errors_as_lines
def check(where: Locations, line: tuple[str, ...], file: Path | None, skip_comments: bool, as_json: bool) -> None:
    """Say whether each LINE would run under the policy, and why not. Exit 0 when all would."""
    loaded = load_policy(where.policy, os.environ, required=where.policy_given)
    loaded = guard(loaded, policy=where.policy, state_dir=where.state_dir, environ=os.environ)
    user = os.environ.get("USER", "")
    expansions = Expansions(home=str(home()), user=user)
    host = RealHost(home=str(home()))
    results = [evaluate(raw, expansions, loaded, host, os.environ) for raw in _lines(line, file, skip_comments)]
    if as_json:
        click.echo(json.dumps([_as_json(r) for r in results]))
    else:
        click.echo("\n".join(_as_text(r) for r in results))
    sys.exit(Exit.OK if all(r.allowed for r in results) else Exit.NO)
