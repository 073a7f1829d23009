"""What every command shares: the three locations, named exit codes, one-line errors."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from hostpipe.core.exitcodes import Exit
from hostpipe.daemon import paths
from hostpipe.daemon.controlclient import ControlError
from hostpipe.daemon.fifo import PipeError
from hostpipe.daemon.locks import AlreadyServing
from hostpipe.daemon.policyfile import PolicyError
from hostpipe.daemon.schema import StoreCorrupt, StoreError

__all__ = ["Exit", "Locations", "errors_as_lines", "fail", "locations"]


@dataclass(frozen=True)
class Locations:
    pipe: Path
    state_dir: Path
    policy: Path
    policy_given: bool


F = TypeVar("F", bound=Callable[..., Any])


def locations(func: F) -> F:
    """Add --pipe, --state-dir and --policy (and their HOSTPIPE_* variables) and pass them as `where`."""

    @click.option("--pipe", type=click.Path(path_type=Path), envvar="HOSTPIPE_PIPE", help="The FIFO.")
    @click.option(
        "--state-dir",
        type=click.Path(path_type=Path),
        envvar="HOSTPIPE_STATE_DIR",
        help="Records and job logs.",
    )
    @click.option("--policy", type=click.Path(path_type=Path), envvar="HOSTPIPE_POLICY", help="Policy file (TOML).")
    @functools.wraps(func)
    def wrapper(*args: Any, pipe: Path | None, state_dir: Path | None, policy: Path | None, **kwargs: Any) -> Any:
        where = Locations(
            pipe=(pipe or paths.default_pipe()).expanduser(),
            state_dir=(state_dir or paths.default_state_dir()).expanduser(),
            policy=(policy or paths.default_policy()).expanduser(),
            policy_given=policy is not None,
        )
        return func(*args, where=where, **kwargs)

    return wrapper  # type: ignore[return-value]


CONFIG_ERRORS = (PipeError, PolicyError, StoreCorrupt)
"""Errors that only a change of configuration can fix: a service manager must not retry them."""
TRANSIENT_ERRORS = (AlreadyServing, StoreError, ControlError, OSError)
"""Errors that may go away: retrying later can succeed."""


def fail(message: str, code: Exit = Exit.UNAVAILABLE) -> NoReturn:
    click.echo(f"hostpipe: {message}", err=True)
    sys.exit(code)


def errors_as_lines(func: F) -> F:
    """Known errors become one line on stderr and their code (3 or 4); --debug shows the traceback instead."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PolicyError as error:
            if _debug():
                raise
            fail(f"invalid policy {error.source}: " + "; ".join(error.problems), Exit.CONFIG)
        except CONFIG_ERRORS as error:
            if _debug():
                raise
            fail(str(error), Exit.CONFIG)
        except TRANSIENT_ERRORS as error:
            if _debug():
                raise
            fail(str(error), Exit.UNAVAILABLE)

    return wrapper  # type: ignore[return-value]


def _debug() -> bool:
    context = click.get_current_context(silent=True)
    root = context.find_root() if context else None
    return bool(root and root.obj and root.obj.get("debug"))
