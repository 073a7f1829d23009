"""`hostpipe man`: the manual page, generated from the click definitions so it never drifts from `--help`.

No extra dependency: click already holds every command's help, arguments and options; this writes them as
man(7) roff. `hostpipe man > hostpipe.1` and `man ./hostpipe.1`, or install it under a MANPATH folder.
"""

from __future__ import annotations

import ast
import datetime
import inspect
import re

import click

from hostpipe import __version__
from hostpipe.core import exitcodes
from hostpipe.core.exitcodes import Exit


def _roff(text: str) -> str:
    """Text made safe for roff: backslashes doubled, a leading dot or quote kept from being a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.MULTILINE)


def _paragraphs(text: str) -> list[str]:
    return [" ".join(part.split()) for part in re.split(r"\n\s*\n", text.strip()) if part.strip()]


def _command(name: str, command: click.Command, ctx: click.Context) -> list[str]:
    out = [f'.SS "hostpipe {name}"']
    usage = " ".join(command.collect_usage_pieces(ctx))
    out.append(f".B hostpipe {_roff(name)}\n{_roff(usage)}")
    for paragraph in _paragraphs(command.help or ""):
        out.append(f".PP\n{_roff(paragraph)}")
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        out.append(f".TP\n.B {_roff(names)}\n{_roff(help_text)}")
    return out


def render(group: click.Group, commands: list[str]) -> str:
    """The whole page: name, synopsis, description, one subsection per command, exit status, environment."""
    ctx = click.Context(group, info_name="hostpipe")
    today = datetime.date.today().isoformat()
    lines = [
        f'.TH HOSTPIPE 1 "{today}" "hostpipe {__version__}" "User Commands"',
        ".SH NAME",
        "hostpipe \\- " + _roff(" ".join((group.help or "").split())),
        ".SH SYNOPSIS",
        ".B hostpipe",
        "[\\-\\-debug] COMMAND [OPTIONS] [ARGS]...",
        ".SH COMMANDS",
    ]
    for name in commands:
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        lines.extend(_command(name, command, click.Context(command, info_name=name, parent=ctx)))
    lines += [".SH EXIT STATUS", ".TP"]
    lines.append(
        "\n.TP\n".join(f".B {int(code)}\n{_roff(_exit_text(code))}" for code in Exit)
        + "\n.TP\n.B 128+N\nthe job was killed by signal N (wait, logs \\-f, submit \\-\\-wait)"
    )
    lines += [
        ".SH ENVIRONMENT",
        ".TP\n.B HOSTPIPE_PIPE, HOSTPIPE_STATE_DIR, HOSTPIPE_POLICY",
        "the defaults of \\-\\-pipe, \\-\\-state\\-dir, \\-\\-policy",
        ".TP\n.B NO_COLOR\nset and not empty: no colour codes in the daemon's console log",
        '.TP\n.B _HOSTPIPE_COMPLETE\nshell completion: eval "$(_HOSTPIPE_COMPLETE=bash_source hostpipe)"',
        ".SH SEE ALSO",
        "docs/cli.md, docs/security.md and README.md in the hostpipe sources.",
    ]
    return "\n".join(lines) + "\n"


def _exit_text(code: Exit) -> str:
    return " ".join(exit_docs().get(code.name, "").split()) or code.name.lower().replace("_", " ")


def exit_docs() -> dict[str, str]:
    """The docstring under each member of the one exit-code table, read from its source (enum members keep none)."""
    tree = ast.parse(inspect.getsource(exitcodes))
    docs: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Exit":
            for member, following in zip(node.body, node.body[1:], strict=False):
                if (
                    isinstance(member, ast.Assign)
                    and isinstance(member.targets[0], ast.Name)
                    and isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)
                ):
                    docs[member.targets[0].id] = following.value.value
    return docs


@click.command(hidden=True)
def man() -> None:
    """Print the manual page (roff) generated from the command definitions."""
    from hostpipe.cli.main import COMMANDS, cli  # noqa: PLC0415 - the group imports this module lazily

    click.echo(render(cli, list(COMMANDS)), nl=False)
