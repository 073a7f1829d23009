"""What every command shares: the three locations, named exit codes, one-line errors."""

from __future__ import annotations

import enum
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from hostpipe.daemon import paths
from hostpipe.daemon.control import ControlError
from hostpipe.daemon.fifo import PipeError
from hostpipe.daemon.policyfile import PolicyError
from hostpipe.daemon.store import StoreError


class Exit(enum.IntEnum):
    OK = 0
    REFUSED = 1
    """`check`: a line was refused. `cancel`: nothing to cancel. `logs`: no such job."""
    USAGE = 2
    FAILURE = 3
    """The command could not do its work: an invalid policy, an unsafe pipe, no daemon, no records."""


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


KNOWN_ERRORS = (PipeError, PolicyError, StoreError, ControlError, OSError)


def fail(message: str, code: Exit = Exit.FAILURE) -> NoReturn:
    click.echo(f"hostpipe: {message}", err=True)
    sys.exit(code)


def errors_as_lines(func: F) -> F:
    """Known errors become one line on stderr and Exit.FAILURE; --debug shows the traceback instead."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PolicyError as error:
            if _debug():
                raise
            fail(f"invalid policy {error.source}: " + "; ".join(error.problems))
        except KNOWN_ERRORS as error:
            if _debug():
                raise
            fail(str(error))

    return wrapper  # type: ignore[return-value]


def _debug() -> bool:
    context = click.get_current_context(silent=True)
    root = context.find_root() if context else None
    return bool(root and root.obj and root.obj.get("debug"))
