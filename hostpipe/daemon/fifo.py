"""Owning the pipe safely.

The pipe's folder is bind-mounted into pods, and a pod that runs as root can put anything there: a symlink to
a file of the daemon user's, a regular file, a FIFO of its own. So the folder is opened once without
following links, and the FIFO is made and opened relative to that folder handle with O_NOFOLLOW, then checked
with fstat on the open descriptor (not on the path, which could change in between). The FIFO is opened
read-write: the daemon itself then always counts as a writer, so reads never see end-of-file and never spin
when the last pod closes its end; it is how systemd's ListenFIFO= opens it too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hostpipe.daemon.locks import AlreadyServing

LISTEN_FDS_START = 3
_PIPE_SIZE = 1 << 20
"""Ask for a 1 MiB pipe buffer so bursts of writers never wait for the reader (falls back silently)."""


class PipeError(Exception):
    """The pipe path cannot be used safely. The message is one line for the operator."""


@dataclass
class OpenPipe:
    fd: int
    path: Path
    inherited: bool
    """True when the descriptor came from the service manager (socket activation): the manager keeps the pipe,
    and its buffer, across the daemon's restarts."""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _open_folder(folder: Path, mode: int) -> int:
    """Open (creating when absent) the pipe's folder without following a link at its last component."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, mode)
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        if os.path.islink(folder):
            raise PipeError(f"{folder} is a symlink; refusing to use it as the pipe's folder") from error
        raise PipeError(f"cannot open the pipe's folder {folder}: {error.strerror}") from error
    info = os.fstat(fd)
    if info.st_uid != os.geteuid():
        os.close(fd)
        raise PipeError(f"{folder} belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})")
    return fd


def open_pipe(path: Path, *, mode: int = 0o600, folder_mode: int = 0o700) -> OpenPipe:
    """Create the FIFO at `path` (or reuse one this user owns) and open it for reading, non-blocking."""
    dir_fd = _open_folder(path.parent, folder_mode)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkfifo(path.name, mode, dir_fd=dir_fd)
        kind = _describe(path.name, dir_fd)
        if kind != "a FIFO":
            # Checked before opening, because opening a device node can have effects of its own.
            raise PipeError(f"{path} is {kind}; remove it or choose another --pipe")
        flags = os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
        try:
            fd = os.open(path.name, flags, dir_fd=dir_fd)
        except OSError as error:
            raise PipeError(f"cannot open the FIFO {path}: {error.strerror}") from error
    finally:
        os.close(dir_fd)
    try:
        _check_fifo(fd, path)
        _lock(fd, path)
        with contextlib.suppress(OSError):
            os.fchmod(fd, mode)
    except (PipeError, AlreadyServing):
        os.close(fd)
        raise
    _grow(fd)
    return OpenPipe(fd, path, inherited=False)


def _lock(fd: int, path: Path) -> None:
    """Two readers on one FIFO would each get some of the lines; the second one is refused instead."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
        raise AlreadyServing(f"another process is already serving {path} (it holds the pipe's lock)") from error


def _describe(name: str, dir_fd: int) -> str:
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return "unreadable"
    if stat.S_ISLNK(info.st_mode):
        return "a symlink"
    if stat.S_ISREG(info.st_mode):
        return "a regular file"
    if stat.S_ISDIR(info.st_mode):
        return "a folder"
    if stat.S_ISFIFO(info.st_mode):
        return "a FIFO"
    return "not a FIFO"


def _check_fifo(fd: int, path: Path) -> None:
    info = os.fstat(fd)
    if not stat.S_ISFIFO(info.st_mode):
        kind = "a regular file" if stat.S_ISREG(info.st_mode) else "not a FIFO"
        raise PipeError(f"{path} is {kind}; remove it or choose another --pipe")
    if info.st_uid != os.geteuid():
        raise PipeError(f"{path} is a FIFO owned by uid {info.st_uid}, not by this user (uid {os.geteuid()})")


def _grow(fd: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)


def inherited_pipe(path: Path, environ: dict[str, str] | None = None) -> OpenPipe | None:
    """The FIFO systemd passed (ListenFIFO=), when LISTEN_PID names this process and fd 3 is a FIFO."""
    env = os.environ if environ is None else environ
    if env.get("LISTEN_PID") != str(os.getpid()):
        return None
    try:
        count = int(env.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + count):
        try:
            info = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISFIFO(info.st_mode):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)
            _grow(fd)
            return OpenPipe(fd, path, inherited=True)
    return None


HELD_PIPE = "HOSTPIPE_HELD_PIPE"
"""Set by the holder of a standalone `hostpipe serve` for a restarted daemon: the FIFO's descriptor it kept."""
HELD_LOCK = "HOSTPIPE_HELD_LOCK"
"""Set by the holder for its daemon: the descriptor of the state folder's lock, which the holder took."""


def held_pipe(path: Path, environ: Mapping[str, str]) -> OpenPipe | None:
    """The FIFO the holder kept from an earlier daemon (which opened and checked it), checked again."""
    value = environ.get(HELD_PIPE)
    if not value:
        return None
    fd = int(value)
    _check_fifo(fd, path)
    os.set_blocking(fd, False)
    os.set_inheritable(fd, False)
    return OpenPipe(fd, path, inherited=False)


def held_lock(environ: Mapping[str, str]) -> int | None:
    value = environ.get(HELD_LOCK)
    if not value:
        return None
    fd = int(value)
    os.set_inheritable(fd, False)
    return fd


LOST_PREFIX = ".lost-"
"""What was found at the pipe's path in its place is moved aside under the pipe's name plus this and a time."""
MAX_LOST_BYTES = 4 << 20
"""The most of a regular file found in the pipe's place that is read back as lines."""


def pipe_state(path: Path, fd: int) -> str | None:
    """None while the path still names the FIFO the daemon reads; otherwise what is (or is not) there."""
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        return f"its folder cannot be opened ({error.strerror})"
    try:
        try:
            found = os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return "missing"
        ours = os.fstat(fd)
        if (found.st_dev, found.st_ino) == (ours.st_dev, ours.st_ino):
            return None
        return "replaced by " + _describe(path.name, dir_fd)
    finally:
        os.close(dir_fd)


def set_aside(path: Path, now: float) -> tuple[Path | None, bytes]:
    """Move whatever is at the pipe's path aside (never deleting or following it); return where it went and,
    for a regular file (pods' `echo` wrote into it while the FIFO was gone), what it holds (bounded)."""
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        try:
            found = os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None, b""
        aside = f"{path.name}{LOST_PREFIX}{int(now)}"
        os.rename(path.name, aside, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        data = b""
        if stat.S_ISREG(found.st_mode):
            file_fd = os.open(aside, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
            try:
                data = os.read(file_fd, MAX_LOST_BYTES)
            finally:
                os.close(file_fd)
        return path.parent / aside, data
    finally:
        os.close(dir_fd)
