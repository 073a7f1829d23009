"""Pod-controlled text on the operator's terminal: `escape` (hostpipe.core.terminal) for text, and a writer for
a job's log bytes. `--json` output and logs written to a file or a pipe stay exact.
"""

from __future__ import annotations

import codecs
from typing import BinaryIO

from hostpipe.core.terminal import escape, needs_escape

__all__ = ["TerminalWriter", "escape", "needs_escape"]


class TerminalWriter:
    """Writes a job's log bytes to a terminal, escaped; keeps newlines and tabs, which cannot rewrite output.

    Bytes arrive in chunks that may cut a UTF-8 character in two: an incremental decoder carries the rest.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")

    def write(self, data: bytes) -> int:
        text = self._decoder.decode(data)
        self._out.write(escape(text, keep="\n\t").encode("utf-8"))
        return len(data)

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        """Write what an unfinished character left (as escapes) and flush."""
        rest = self._decoder.decode(b"", final=True)
        if rest:
            self._out.write(escape(rest, keep="\n\t").encode("utf-8"))
        self._out.flush()
