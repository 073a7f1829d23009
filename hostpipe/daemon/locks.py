"""One daemon per state folder.

A second daemon on the same state folder would repair, and so stop, the first one's running jobs, and both
would write the records. `serve.lock` in the folder is held with flock for the daemon's whole life; the lock
belongs to the open file, so a holder process that passes the descriptor to its daemon keeps it held across
the daemon's restarts.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "serve.lock"


class AlreadyServing(Exception):
    """Another hostpipe serve holds the lock. The message is one line for the operator."""


def lock_state_dir(state_dir: Path) -> int:
    """Take the state folder's lock and return its descriptor (kept open for the daemon's life)."""
    path = state_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
        os.close(fd)
        raise AlreadyServing(f"another hostpipe serve is using the state folder {state_dir}") from error
    return fd
