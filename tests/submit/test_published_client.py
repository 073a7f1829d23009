"""The sh client as the daemon publishes it: the one exit-code table written in, valid for dash and busybox sh."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from hostpipe.core.exitcodes import SIGNAL_BASE, Exit
from hostpipe.daemon.publish import render

SHELLS = [["dash"], ["busybox", "sh"], ["bash", "--posix"]]


def test_the_published_client_takes_its_codes_from_the_one_table() -> None:
    """Every placeholder is filled, and the codes the client uses itself are the table's."""
    text = render("vk-cmd").decode()
    assert re.search(r"@[A-Z_]+@", text) is None
    assert f"EXIT_NO_DAEMON={Exit.NO_DAEMON.value}\n" in text
    assert f"EXIT_CLIENT_ERROR={Exit.CLIENT_ERROR.value}\n" in text
    assert f"SIGNAL_BASE={SIGNAL_BASE}\n" in text


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell[0])
@pytest.mark.parametrize("pipe_name", ["vk-cmd", "it's a $pipe `x`"])
def test_the_published_client_parses_in_every_shell_and_knows_its_pipe(shell: list[str], pipe_name: str) -> None:
    """The text parses (sh -n) under dash, busybox sh and bash --posix, and a pipe name of any characters is one
    literal word in it."""
    if shutil.which(shell[0]) is None:
        pytest.skip(f"{shell[0]} is not installed")
    text = render(pipe_name).decode()
    checked = subprocess.run([*shell, "-n"], input=text, capture_output=True, text=True, timeout=10, check=False)
    assert checked.returncode == 0, checked.stderr
    assignment = next(line for line in text.splitlines() if line.startswith("pipe_name="))
    shown = subprocess.run(
        [*shell, "-c", f"{assignment}\nprintf '%s' \"$pipe_name\""],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert shown.stdout == pipe_name
