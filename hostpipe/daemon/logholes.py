"""Reading a job's log around the bytes dropped at the log cap.

The cap (`logcap`) frees the middle of a long log by punching a hole in it: the file keeps its size, and a
read of the hole returns zeros. So a reader asks the filesystem where the data lies (SEEK_DATA, SEEK_HOLE),
copies only that, and puts one line where bytes were dropped, never the zeros. `hostpipe logs` reads every
log this way; `dropped_bytes` is what the cap records in `log_dropped`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 16


def segments(fd: int, start: int, end: int) -> Iterator[tuple[int, int, bool]]:
    """The ranges of the file between `start` and `end`, in order: (from, to, kept); not kept is dropped."""
    position = start
    while position < end:
        try:
            data = os.lseek(fd, position, os.SEEK_DATA)
        except OSError as error:
            if error.errno == errno.ENXIO:
                data = end  # nothing but a hole from here to the end of the file
            elif error.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                yield position, end, True  # a filesystem that knows no holes: everything is data
                return
            else:
                raise
        if data > position:
            stop = min(data, end)
            yield position, stop, False
            position = stop
            continue
        hole = min(os.lseek(fd, position, os.SEEK_HOLE), end)
        yield position, hole, True
        position = hole


def dropped_bytes(fd: int, size: int) -> int:
    """How many bytes of the file's first `size` are holes."""
    return sum(to - start for start, to, kept in segments(fd, 0, size) if not kept)


def marker(count: int) -> bytes:
    """The line a reader shows in place of dropped bytes."""
    return f"\n[hostpipe: {count} bytes of this log were dropped here at the log cap]\n".encode()


def copy_kept(path: Path, offset: int, out: BinaryIO) -> int:
    """Write what the log holds from `offset` to its current end into `out`, with `marker` for each dropped
    range; return the offset reached (pass it back in to follow the log). A missing log copies nothing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return offset
    try:
        size = os.fstat(fd).st_size
        position = offset
        while position < size:
            before = position
            for start, end, kept in segments(fd, position, size):
                if not kept:
                    out.write(marker(end - start))
                    position = end
                    continue
                position = _copy_data(fd, start, end, out)
                if position < end:
                    break  # the range became a hole while it was read: look again from here
            if position == before:
                break  # the file shrank under the reader; nothing more to show
        return position
    finally:
        os.close(fd)


def _copy_data(fd: int, start: int, end: int, out: BinaryIO) -> int:
    position = start
    while position < end:
        chunk = os.pread(fd, min(_CHUNK, end - position), position)
        if not chunk:
            break
        # The cap may punch this range between the look-up and the read (a log followed while it grows): a
        # chunk read from what is a hole by now may be zeros, so it is only written while still data.
        if _hole_at(fd, position):
            break
        out.write(chunk)
        position += len(chunk)
    return position


def _hole_at(fd: int, position: int) -> bool:
    try:
        return os.lseek(fd, position, os.SEEK_DATA) != position
    except OSError:
        return False
