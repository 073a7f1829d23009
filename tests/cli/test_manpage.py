"""`hostpipe man`: a manual page generated from the click definitions, valid roff, every command in it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hostpipe.cli.main import COMMANDS
from hostpipe.core.exitcodes import Exit
from tests.conftest import hostpipe


def test_man_page_has_every_command_option_and_exit_code():
    """Each listed command has its subsection and its options; every code of the exit table is described."""
    page = hostpipe("man").stdout
    assert page.startswith(".TH HOSTPIPE 1 ")
    for name in COMMANDS:
        if name != "man":
            assert f'.SS "hostpipe {name}"' in page, name
    assert "\\-\\-no\\-trunc" in page and "\\-\\-detach" in page and "\\-\\-timeout" in page
    for code in Exit:
        assert f".B {int(code)}\n" in page, code
    assert "RestartPreventExitStatus=3" in page


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_man_page_renders_without_roff_warnings(tmp_path):
    """groff reads the page with every warning on and reports none."""
    page = tmp_path / "hostpipe.1"
    page.write_text(hostpipe("man").stdout)
    result = subprocess.run(
        ["groff", "-man", "-ww", "-z", str(page)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_completion_as_documented_offers_commands_and_states():
    """The bash completion docs/cli.md documents completes command names and --state's choices."""

    def complete(words: str, index: int) -> list[str]:
        env = {**os.environ, "_HOSTPIPE_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(index)}
        return [line.split(",", 1)[1] for line in hostpipe(env=env).stdout.splitlines()]

    assert {"serve", "status", "show"} <= set(complete("hostpipe s", 1))
    assert complete("hostpipe ps --state r", 3) == ["running", "refused"]
    docs = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    assert 'eval "$(_HOSTPIPE_COMPLETE=bash_source hostpipe)"' in docs
