"""The read-only commands answer without the daemon's heavy imports (pydantic, structlog, asyncio)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.cli.test_ps import make_store

HEAVY = ("pydantic", "structlog", "asyncio", "importlib.metadata")


def imported(args: list[str]) -> set[str]:
    """The modules `python -m hostpipe ARGS` imported, from -X importtime."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hostpipe", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize(
    "args",
    [["ps", "--last", "20"], ["status"], ["show", "3"], ["logs", "3"], ["wait", "3"], ["ps", "--json", "--all"]],
    ids=" ".join,
)
def test_read_only_commands_import_no_pydantic_structlog_or_asyncio(tmp_path, args):
    """ps, status, show, logs and wait load neither the policy models, nor the logger, nor an event loop."""
    make_store(tmp_path, 5, start=time.time() - 10)
    modules = imported([*args, "--state-dir", str(tmp_path)])
    assert "hostpipe.cli.main" in modules
    assert not {m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY}
