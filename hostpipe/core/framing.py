"""Cutting the pipe's byte stream into lines, so that no writer can change another writer's line.

A pipe keeps no write boundaries, so the rule is about reads. Writes of at most PIPE_BUF (4096) bytes reach a
pipe whole, and the reader sees what several writers wrote one after the other:

- A newline ends a line.
- Bytes left without a newline at the end of a read that emptied the pipe are cut off there, as a line of their
  own that is refused (`unterminated`): a writer that leaves out its newline, or trickles its line a byte at a
  time, can never join its bytes to a line that arrives later. Bytes without a newline at the end of a read
  that did not empty the pipe wait for the next read, which continues the same stretch of the pipe.
- A run of PIPE_BUF bytes or more without a newline is refused whole (`line-too-long`) and dropped up to its
  newline, or up to the end of a read that emptied the pipe; framing starts cleanly after it.

What a reader cannot tell apart: an unterminated write followed by another writer's line within one read
(the two become one line), and a write larger than PIPE_BUF that the kernel interleaves with short lines (those
become part of the overlong run). Both are recorded as what arrived; neither can come from a writer that ends
each line with a newline and keeps it under PIPE_BUF, which `echo` does.

Each frame carries `end`, the position just after it in the stream, so the daemon can record how far it has
consumed.
"""

from __future__ import annotations

from dataclasses import dataclass

PIPE_BUF = 4096
HEAD = 256
"""Bytes of an overlong run kept for its record."""


@dataclass(frozen=True)
class Line:
    data: bytes
    """Without its newline."""
    end: int = 0
    terminated: bool = True
    """False when the bytes were cut off at the end of a read that emptied the pipe, without a newline."""


@dataclass(frozen=True)
class Overlong:
    head: bytes
    """The first bytes of the run, for the record."""
    size: int
    """How many bytes the run had before its newline (or before the read that ended it)."""
    end: int = 0


Frame = Line | Overlong


class Framer:
    """Feed it each read as it happens; it returns the frames the read completes."""

    def __init__(self, limit: int = PIPE_BUF, *, position: int = 0) -> None:
        self._limit = limit
        self._partial = bytearray()
        self._dropping = 0
        """While > 0: the size of the overlong run whose tail is being skipped."""
        self._head = b""
        self.position = position
        """Where in the stream the next byte fed will be."""

    @property
    def pending(self) -> bool:
        return bool(self._partial) or self._dropping > 0

    @property
    def pending_bytes(self) -> int:
        return len(self._partial) + self._dropping

    def feed(self, data: bytes, *, emptied: bool) -> list[Frame]:
        """Frames completed by `data`, one read of the pipe; `emptied`: the read found nothing more behind it."""
        frames: list[Frame] = []
        start = 0
        base = self.position
        size = len(data)
        while start < size:
            newline = data.find(b"\n", start)
            end = size if newline < 0 else newline
            if self._dropping:
                self._dropping += end - start
            else:
                self._partial += data[start:end]
                # The limit counts the newline: content of `limit` bytes cannot be written atomically with it.
                if len(self._partial) >= self._limit:
                    self._head = bytes(self._partial[:HEAD])
                    self._dropping = len(self._partial)
                    self._partial.clear()
            if newline < 0:
                break
            frames.append(self._end(base + newline + 1, terminated=True))
            start = newline + 1
        self.position = base + size
        if emptied and self.pending:
            frames.append(self._end(self.position, terminated=False))
        return frames

    def _end(self, end: int, *, terminated: bool) -> Frame:
        if self._dropping:
            frame: Frame = Overlong(self._head, self._dropping, end)
            self._dropping = 0
            self._head = b""
            return frame
        line = Line(bytes(self._partial), end, terminated)
        self._partial.clear()
        return line
