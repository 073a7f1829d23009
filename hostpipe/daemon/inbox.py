"""The inbox: the pipe's bytes, moved by the kernel into a file before the daemon looks at them.

A pipe's buffer lives only as long as someone holds the pipe open, and bytes a process has read live only as
long as that process. So the daemon never reads the pipe into its own memory first: `splice(2)` moves the
bytes from the pipe into the inbox file inside the kernel, and the daemon reads them back from there. A
daemon killed at any moment leaves every byte it took either in the pipe or in the inbox. Each batch of
records is committed together with the inbox position it reached; the next daemon frames and records what
lies past that position, so nothing is lost and nothing is recorded twice.

The inbox is a series of files, `inbox.<generation>` in the state folder. Once everything in the current file
is committed and it has grown past a size, the next bytes go to a new generation; files of generations before
the committed one are removed. The inbox never holds more than `MAX_UNCOMMITTED` bytes the store has not
committed: past that the daemon stops taking from the pipe, and writers wait there (the pipe holds 1 MiB).
What a pipe holds at one moment is a run of whole writes, so the daemon takes all of it at once (it waits
for room rather than take part of it): a line is never split between two takes.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import re
import termios
from dataclasses import dataclass
from pathlib import Path

ROTATE_AT = 1 << 20
"""Start a new file once the current one is fully committed and at least this large."""
MAX_UNCOMMITTED = 4 << 20
"""Stop taking from the pipe while this many bytes in the inbox wait for the store (several pipe buffers)."""
_NAME = re.compile(r"inbox\.(\d+)")


@dataclass(frozen=True)
class Position:
    generation: int
    offset: int


def _files(state_dir: Path) -> dict[int, Path]:
    found = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(state_dir):
            match = _NAME.fullmatch(entry.name)
            if match and entry.is_file(follow_symlinks=False):
                found[int(match.group(1))] = Path(entry.path)
    return found


class Inbox:
    def __init__(self, state_dir: Path) -> None:
        self._dir = state_dir
        self.generation = 0
        self.end = 0
        """Bytes in the current file."""
        self._fd: int | None = None
        self._kept_from = 0
        """Files of generations below this one are already removed."""

    def recover(self, committed: Position | None, *, after: int = 0) -> bytes:
        """The bytes a previous daemon took from the pipe but did not record; then open a new generation.

        Files before the committed generation are removed; the committed one is read from the committed offset,
        later ones whole. The new generation is above `after` too (a folder made again keeps counting up).
        """
        files = _files(self._dir)
        left = bytearray()
        start = committed or Position(0, 0)
        for generation in sorted(files):
            path = files[generation]
            if generation >= start.generation:
                offset = start.offset if generation == start.generation else 0
                with contextlib.suppress(OSError), path.open("rb") as source:
                    source.seek(offset)
                    left += source.read()
        self.generation = max([start.generation, after, *files]) + 1
        self._open_current()
        return bytes(left)

    def _open_current(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        path = self._dir / f"inbox.{self.generation}"
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = os.open(path, flags, 0o600)
        self.end = 0

    @staticmethod
    def available(pipe_fd: int) -> int:
        """Bytes the pipe holds now."""
        buffer = array.array("i", [0])
        fcntl.ioctl(pipe_fd, termios.FIONREAD, buffer)
        return int(buffer[0])

    def take(self, pipe_fd: int, count: int) -> bytes:
        """Move `count` bytes from the pipe into the inbox and return them (fewer if the pipe held fewer).

        Raises OSError when the inbox cannot be written (a full disk, an immutable or vanished folder); the
        bytes then stay in the pipe.
        """
        assert self._fd is not None
        try:
            moved = os.splice(pipe_fd, self._fd, count, offset_dst=self.end, flags=os.SPLICE_F_NONBLOCK)
        except BlockingIOError:
            return b""
        if moved <= 0:
            return b""
        data = os.pread(self._fd, moved, self.end)
        self.end += moved
        return data

    def append(self, data: bytes) -> None:
        """Write bytes that came other than through the pipe (a file found in its place) into the inbox."""
        assert self._fd is not None
        written = 0
        while written < len(data):
            written += os.pwrite(self._fd, data[written:], self.end + written)
        self.end += len(data)

    def position(self, offset: int) -> Position:
        return Position(self.generation, offset)

    def committed(self, position: Position) -> bool:
        """The store holds everything up to `position`: drop older files, start a new one when this one is big.

        Returns True when a new file was started: positions then count from 0 again.
        """
        if position.generation > self._kept_from:
            for generation, path in _files(self._dir).items():
                if generation < position.generation:
                    with contextlib.suppress(OSError):
                        path.unlink()
            self._kept_from = position.generation
        if position.generation == self.generation and position.offset == self.end and self.end >= ROTATE_AT:
            self.generation += 1
            self._open_current()
            return True
        return False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """Close and remove every inbox file: the store holds everything they held."""
        self.close()
        for path in _files(self._dir).values():
            with contextlib.suppress(OSError):
                path.unlink()
