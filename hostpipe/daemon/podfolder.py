"""Writing into the folder pods share with the daemon without being turned against the daemon user.

The pipe's folder is bind-mounted into pods, and a pod that is root in its container can create, replace and
remove anything in it at any moment: symlinks to the daemon user's files, hard links, FIFOs, folders of
another owner. So everything the daemon does there goes through folder handles it opened itself:

- a folder is opened one name at a time, relative to a handle the daemon holds, with O_NOFOLLOW and
  O_DIRECTORY, and must belong to the daemon user (checked with fstat on the open handle, not on the path);
- a file is only ever created (O_CREAT|O_EXCL|O_NOFOLLOW) and written through the descriptor that created it,
  never opened for writing when it exists: the daemon writes only into files it made;
- a file that others read whole is written under a temporary name and renamed over its name; renameat
  replaces the entry itself, whatever it was, so a symlink planted there is replaced and its target untouched;
- removing unlinks names (never what a link points to) and walks folders through handles.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
TEMP_PREFIX = ".tmp-"

Identity = tuple[int, int]
"""A file's (st_dev, st_ino): what a name must still lead to for the daemon to go on using it."""


class Unsafe(Exception):
    """An entry the daemon will not use: a symlink, another user's, not a folder. The message says which."""


def identity(info: os.stat_result) -> Identity:
    return info.st_dev, info.st_ino


def _checked_folder(fd: int, shown: str) -> Identity:
    info = os.fstat(fd)
    if not stat.S_ISDIR(info.st_mode):
        raise Unsafe(f"{shown} is not a folder")
    if info.st_uid != os.geteuid():
        raise Unsafe(f"{shown} belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})")
    return identity(info)


def open_folder(path: Path) -> tuple[int, Identity]:
    """Open the pipe's folder (its parents are the daemon user's own) without following a link at its name."""
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise Unsafe(f"{path} is a symlink") from error
        raise Unsafe(f"cannot open {path}: {error.strerror}") from error
    try:
        return fd, _checked_folder(fd, str(path))
    except Unsafe:
        os.close(fd)
        raise


def open_subfolder(parent: int, name: str, *, mode: int | None = None, shown: str = "") -> tuple[int, Identity]:
    """Open `name` in the folder `parent`, creating it with `mode` when given and absent. Raises Unsafe for a
    symlink, something that is not a folder, or a folder of another user; FileNotFoundError when absent."""
    shown = shown or name
    created = False
    if mode is not None:
        try:
            os.mkdir(name, mode, dir_fd=parent)
            created = True
        except FileExistsError:
            pass
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Unsafe(f"{shown} is {describe(parent, name)}") from error
        raise
    try:
        ident = _checked_folder(fd, shown)
        if mode is not None and created:
            os.fchmod(fd, mode)  # what the umask took away
    except Unsafe:
        os.close(fd)
        raise
    return fd, ident


def describe(parent: int, name: str) -> str:
    try:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except OSError:
        return "gone"
    if stat.S_ISLNK(info.st_mode):
        return "a symlink"
    if stat.S_ISDIR(info.st_mode):
        return f"a folder of uid {info.st_uid}"
    if stat.S_ISREG(info.st_mode):
        return "a file"
    return "not a folder"


def still(parent: int, name: str, ident: Identity) -> bool:
    """Whether `name` in `parent` is still the entry the daemon made (not removed, renamed or replaced)."""
    try:
        return identity(os.stat(name, dir_fd=parent, follow_symlinks=False)) == ident
    except OSError:
        return False


def create_file(folder: int, name: str, mode: int) -> int:
    """A new file for writing; FileExistsError when anything (a file, a symlink, a FIFO) has the name."""
    fd = os.open(name, _NEW_FILE, mode, dir_fd=folder)
    with contextlib.suppress(OSError):
        os.fchmod(fd, mode)
    return fd


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def temp_name() -> str:
    return TEMP_PREFIX + secrets.token_hex(6)


def write_whole(folder: int, name: str, data: bytes, mode: int = 0o644) -> None:
    """Make `name` hold `data`, appearing at once: a new temporary file renamed over whatever had the name."""
    temp = temp_name()
    fd = create_file(folder, temp, mode)
    try:
        write_all(fd, data)
    except BaseException:
        os.close(fd)
        remove(folder, temp)
        raise
    os.close(fd)
    place(folder, temp, name)


def place(folder: int, temp: str, name: str) -> None:
    """Rename the daemon's temporary file over `name`; a folder someone put at `name` is removed first."""
    try:
        os.rename(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError as error:
        if error.errno not in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
            remove(folder, temp)
            raise
        remove(folder, name)
        try:
            os.rename(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
        except OSError:
            remove(folder, temp)
            raise


def remove(folder: int, name: str) -> None:
    """Remove `name` from `folder` whatever it is; a folder with everything in it, walked through handles."""
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=folder)
        return
    # shutil.rmtree with dir_fd opens every folder with O_NOFOLLOW and checks it is the one it listed, so a
    # folder swapped for a symlink during the walk is not followed (rmtree.avoids_symlink_attacks).
    shutil.rmtree(name, dir_fd=folder)


def set_aside(folder: int, name: str) -> str | None:
    """Move an entry the daemon cannot use out of the way (renamed, to be removed later); its new name."""
    aside = f".refused-{name}-{secrets.token_hex(4)}"
    try:
        os.rename(name, aside, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError:
        return None
    return aside


def replace_with_folder(parent: int, name: str, mode: int) -> tuple[int, Identity]:
    """Open the daemon's own folder `name`, or, when what has that name is unusable, put a new one there."""
    try:
        return open_subfolder(parent, name, mode=mode)
    except Unsafe:
        pass
    try:
        remove(parent, name)
    except OSError:
        if set_aside(parent, name) is None:
            raise
    return open_subfolder(parent, name, mode=mode)
