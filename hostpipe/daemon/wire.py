"""Length-prefixed messages between the daemon and its store writer, over a socketpair.

Messages are tuples of plain values (str, int, float, None, tuples, lists) encoded with `marshal`: the fastest
encoder of such values in the standard library, and both ends are the same hostpipe. Each frame is a 4-byte
big-endian length followed by the encoded message.
"""

from __future__ import annotations

import marshal
import struct
from typing import Any

_HEADER = struct.Struct(">I")
HEADER_SIZE = _HEADER.size
MAX_MESSAGE = 256 << 20
"""A message larger than this is a bug, not a batch."""


def encode(message: Any) -> bytes:
    body = marshal.dumps(message)
    return _HEADER.pack(len(body)) + body


class Decoder:
    """Feed it bytes as they arrive; it returns the whole messages they complete."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= HEADER_SIZE:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > MAX_MESSAGE:
                raise ValueError(f"a message of {size} bytes is larger than {MAX_MESSAGE}")
            end = HEADER_SIZE + size
            if len(self._buffer) < end:
                break
            # Both ends are this hostpipe, over a socketpair no other process holds.
            messages.append(marshal.loads(bytes(self._buffer[HEADER_SIZE:end])))  # noqa: S302
            del self._buffer[:end]
        return messages
