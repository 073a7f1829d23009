"""Cutting the pipe's byte stream into lines.

Writes of at most PIPE_BUF bytes reach a pipe whole, so a line of up to 4096 bytes (newline included) written
in one write is never mixed with another writer's. A newline ends a line. Bytes left without a newline are a
line too once the writer has gone quiet: the caller decides when (`flush`), since the pipe is held open by the
daemon or by systemd and end-of-file never comes. An overlong line is not cut into pieces that could each run;
it is kept as one `Overlong` frame with its first bytes, and everything up to its newline is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

PIPE_BUF = 4096


@dataclass(frozen=True)
class Line:
    data: bytes
    """Without its newline."""


@dataclass(frozen=True)
class Overlong:
    head: bytes
    """The first bytes of the line, for the record."""
    size: int
    """How many bytes the line had before its newline (or before it was given up on)."""


Frame = Line | Overlong


class Framer:
    """Feed it chunks as they are read; it returns the frames each chunk completes."""

    def __init__(self, limit: int = PIPE_BUF) -> None:
        self._limit = limit
        self._partial = bytearray()
        self._dropping = 0
        """While > 0: the size of the overlong line whose tail is being skipped."""
        self._head = b""

    @property
    def pending(self) -> bool:
        return bool(self._partial) or self._dropping > 0

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        start = 0
        while start < len(data):
            newline = data.find(b"\n", start)
            end = len(data) if newline < 0 else newline
            piece = data[start:end]
            if self._dropping:
                self._dropping += len(piece)
            else:
                self._partial += piece
                # The limit counts the newline: content of `limit` bytes cannot be written atomically with it.
                if len(self._partial) >= self._limit:
                    self._head = bytes(self._partial[:256])
                    self._dropping = len(self._partial)
                    self._partial.clear()
            if newline < 0:
                break
            frames.append(self._end_line())
            start = newline + 1
        return frames

    def flush(self) -> list[Frame]:
        """The writer has gone quiet: whatever is pending is a whole line."""
        if not self.pending:
            return []
        return [self._end_line()]

    def _end_line(self) -> Frame:
        if self._dropping:
            frame: Frame = Overlong(self._head, self._dropping)
            self._dropping = 0
            self._head = b""
            return frame
        line = Line(bytes(self._partial))
        self._partial.clear()
        return line
