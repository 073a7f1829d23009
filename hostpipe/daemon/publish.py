"""The POSIX-sh client, published where pods can run it: `<pipe folder>/bin/hostpipe-submit`.

vk-cmd runs a pod's command with bash inside its own container, which may have no Python; the folder next to
the pipe is the one place every pod sees. Pods can also write there, so the daemon checks the file at start
and on every tick and puts it back whenever it differs (content, mode, owner, or a symlink or anything else in
its place): a pod that runs it by the path the daemon maintains runs what the daemon published, give or take
the second between two checks. The check costs one lstat when nothing changed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
from importlib import resources

import structlog

from hostpipe import __version__
from hostpipe.core.exitcodes import SIGNAL_BASE, Exit
from hostpipe.core.grammar import MAX_LINE_BYTES
from hostpipe.core.replies import ALIVE, BIN_DIR, CLIENT_NAME, REPLIES_DIR
from hostpipe.daemon import podfolder
from hostpipe.daemon.podfolder import Identity, Unsafe

log = structlog.get_logger("hostpipe.publish")

TEMPLATE = "hostpipe-submit.sh"
CLIENT_MODE = 0o755
BIN_MODE = 0o755


def render(pipe_name: str) -> bytes:
    """The client's text for a pipe of this name, with the one exit-code table's values written in."""
    text = resources.files("hostpipe").joinpath("data", TEMPLATE).read_text(encoding="utf-8")
    values = {
        "VERSION": __version__,
        "PIPE_NAME": shlex.quote(pipe_name),
        "REPLIES": shlex.quote(REPLIES_DIR),
        "ALIVE": shlex.quote(ALIVE),
        "SIGNAL_BASE": str(SIGNAL_BASE),
        "MAX_LINE": str(MAX_LINE_BYTES),
        **{f"EXIT_{code.name}": str(int(code)) for code in Exit},
    }
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    return text.encode("utf-8")


class PublishedClient:
    """Keeps `bin/hostpipe-submit` in the pipe's folder what the daemon published."""

    def __init__(self, folder: int, pipe_name: str) -> None:
        self._folder = folder
        self.content = render(pipe_name)
        self._bin: int | None = None
        self._bin_id: Identity | None = None
        self._signature: tuple[int, int, int, int] | None = None
        """(inode, ctime, size, mode) of the file last seen whole and right: any write, chmod or link moves ctime."""
        self._warned: str | None = None

    def close(self) -> None:
        if self._bin is not None:
            with contextlib.suppress(OSError):
                os.close(self._bin)
        self._bin = None

    def check(self) -> None:
        try:
            self._check()
        except (OSError, Unsafe) as error:
            text = str(error)
            if text != self._warned:
                log.error("client_not_published", folder=BIN_DIR, error=text)
            self._warned = text
            self.close()
            return
        self._warned = None

    def _check(self) -> None:
        folder = self._bin_folder()
        try:
            info = os.stat(CLIENT_NAME, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            self._publish(folder, "absent")
            return
        signature = (info.st_ino, info.st_ctime_ns, info.st_size, info.st_mode)
        if signature == self._signature:
            return
        wrong = self._wrong(folder, info)
        if wrong is None:
            self._signature = signature
            return
        self._publish(folder, wrong)

    def _bin_folder(self) -> int:
        if self._bin is not None and self._bin_id is not None and podfolder.still(self._folder, BIN_DIR, self._bin_id):
            return self._bin
        if self._bin is not None:
            log.warning("client_folder_replaced", folder=BIN_DIR)
        self.close()
        self._signature = None
        self._bin, self._bin_id = podfolder.replace_with_folder(self._folder, BIN_DIR, BIN_MODE)
        os.fchmod(self._bin, BIN_MODE)
        return self._bin

    def _wrong(self, folder: int, info: os.stat_result) -> str | None:
        """What is wrong with the file that has the client's name, or None when it is the published client."""
        if stat.S_ISLNK(info.st_mode):
            return "a symlink"
        if not stat.S_ISREG(info.st_mode):
            return "not a file"
        if info.st_uid != os.geteuid():
            return f"owned by uid {info.st_uid}"
        if stat.S_IMODE(info.st_mode) != CLIENT_MODE:
            return f"mode {stat.S_IMODE(info.st_mode):o}"
        if info.st_nlink != 1:
            return "linked elsewhere"
        if info.st_size != len(self.content):
            return "changed"
        fd = os.open(CLIENT_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
        try:
            if podfolder.identity(os.fstat(fd)) != podfolder.identity(info):
                return "replaced"
            data = os.read(fd, len(self.content) + 1)
        finally:
            os.close(fd)
        return None if data == self.content else "changed"

    def _publish(self, folder: int, wrong: str) -> None:
        podfolder.write_whole(folder, CLIENT_NAME, self.content, CLIENT_MODE)
        info = os.stat(CLIENT_NAME, dir_fd=folder, follow_symlinks=False)
        self._signature = (info.st_ino, info.st_ctime_ns, info.st_size, info.st_mode)
        if wrong == "absent":
            log.info("client_published", path=f"{BIN_DIR}/{CLIENT_NAME}")
        else:
            log.warning("client_restored", path=f"{BIN_DIR}/{CLIENT_NAME}", found=wrong)
