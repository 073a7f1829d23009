"""Where things live by default: the XDG base directories, with the documented fallbacks."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("HOME") or os.path.expanduser("~"))


def default_pipe() -> Path:
    return home() / "hostpipe" / "vk-cmd"


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(home() / ".local" / "state")
    return Path(base) / "hostpipe"


def default_policy() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(home() / ".config")
    return Path(base) / "hostpipe" / "policy.toml"


def control_socket(state_dir: Path) -> Path:
    return state_dir / "control.sock"


def cid_dir(state_dir: Path) -> Path:
    """Container ids of running docker and podman jobs, in files hostpipe adds with --cidfile."""
    return state_dir / "cid"


def pid_file(state_dir: Path) -> Path:
    """The pid of a `hostpipe serve --detach`'s holder, while it runs."""
    return state_dir / "serve.pid"
