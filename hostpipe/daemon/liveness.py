"""Whether a daemon serves a state folder, seen from outside without disturbing it.

A daemon (or the holder that runs it) holds `serve.lock` with flock for its whole life. Taking the lock to
test it would make a daemon that starts at that moment fail, so the CLI reads the kernel's table of held locks
(/proc/locks) instead: it names the pid that holds the lock. Nothing here imports the daemon's event loop or
policy models, so `ps` and `status` stay quick.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hostpipe.daemon.locks import LOCK_NAME

_LOCKS = Path("/proc/locks")


@dataclass(frozen=True)
class LockHolder:
    pid: int | None
    """The process that took the lock (None: held, but the kernel shows no pid from this namespace)."""


def lock_holder(state_dir: Path, *, locks: Path = _LOCKS) -> LockHolder | None:
    """Who holds the state folder's lock, or None when no daemon holds it (or the folder has none)."""
    try:
        info = os.stat(state_dir / LOCK_NAME)
        table = locks.read_text()
    except OSError:
        return None
    for entry in table.splitlines():
        fields = entry.split()
        # "1: FLOCK  ADVISORY  WRITE 17129 fe:00:2156689 0 EOF"; a blocked waiter's entry starts "1: ->".
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            same = int(inode) == info.st_ino and (int(major, 16), int(minor, 16)) == (
                os.major(info.st_dev),
                os.minor(info.st_dev),
            )
            pid = int(fields[4])
        except ValueError:
            continue
        if same:
            return LockHolder(pid if pid > 0 else None)
    return None


def serving(state_dir: Path) -> bool:
    return lock_holder(state_dir) is not None
