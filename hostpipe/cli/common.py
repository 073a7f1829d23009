"""What every command shares: the three locations, named exit codes, one-line errors."""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from hostpipe.core.exitcodes import Exit
from hostpipe.daemon import paths

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


CONFIG_ERRORS = (
    ("hostpipe.daemon.fifo", "PipeError"),
    ("hostpipe.daemon.policyfile", "PolicyError"),
    ("hostpipe.daemon.schema", "StoreCorrupt"),
)
"""Errors that only a change of configuration can fix: a service manager must not retry them."""
TRANSIENT_ERRORS = (
    ("hostpipe.daemon.locks", "AlreadyServing"),
    ("hostpipe.daemon.schema", "StoreError"),
    ("hostpipe.daemon.controlclient", "ControlError"),
)
"""Errors that may go away: retrying later can succeed (and every OSError)."""


def _known() -> tuple[type[BaseException], ...]:
    return (*_loaded(CONFIG_ERRORS), *_loaded(TRANSIENT_ERRORS), OSError)


def _loaded(names: tuple[tuple[str, str], ...]) -> tuple[type[Exception], ...]:
    """The error classes among `names` whose module is loaded. An error of a module never imported cannot have
    been raised, so a command is not made to import the policy models, sockets or sqlite just to name them."""
    found = []
    for module_name, class_name in names:
        module = sys.modules.get(module_name)
        if module is not None:
            found.append(getattr(module, class_name))
    return tuple(found)


_WHAT_TO_DO = {
    errno.ENOENT: "check the path, or create what is missing",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EACCES: "check the owner and permissions of the path and its folders",
    errno.EPERM: "check the owner and permissions of the path and its folders",
    errno.EROFS: "the filesystem is read-only: choose a path on a writable one",
    errno.ENOSPC: "free some space on that filesystem",
    errno.EDQUOT: "free some space, or raise the quota",
    errno.EEXIST: "move the existing file away, or choose another path",
    errno.EISDIR: "it is a folder: give the path of a file",
    errno.ELOOP: "it is a symbolic link, which hostpipe does not follow there: give the real path",
}


def describe_os_error(error: OSError) -> str:
    """An OSError as one sentence with the path and what to do, never `[Errno 2] ...`."""
    text = error.strerror or str(error)
    if error.filename is not None:
        text = f"{os.fsdecode(error.filename)}: {text}"
        if error.filename2 is not None:
            text += f" (and {os.fsdecode(error.filename2)})"
    hint = _WHAT_TO_DO.get(error.errno or 0)
    return f"{text}; {hint}" if hint else text


def fail(message: str, code: Exit = Exit.UNAVAILABLE) -> NoReturn:
    click.echo(f"hostpipe: {message}", err=True)
    sys.exit(code)


def errors_as_lines(func: F) -> F:
    """Known errors become one line on stderr and their code (3 or 4); --debug shows the traceback instead."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        # The tuple is built when an error is being matched, from the modules loaded by then.
        except _known() as error:
            if _debug():
                raise
            if type(error).__name__ == "PolicyError":
                fail(f"invalid policy {error.source}: " + "; ".join(error.problems), Exit.CONFIG)  # type: ignore[attr-defined]
            if isinstance(error, _loaded(CONFIG_ERRORS)):
                fail(str(error), Exit.CONFIG)
            if isinstance(error, OSError):
                fail(describe_os_error(error), Exit.UNAVAILABLE)
            fail(str(error), Exit.UNAVAILABLE)

    return wrapper  # type: ignore[return-value]


def _debug() -> bool:
    context = click.get_current_context(silent=True)
    root = context.find_root() if context else None
    return bool(root and root.obj and root.obj.get("debug"))
