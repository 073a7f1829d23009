"""Cutting the byte stream into lines: newline, quiet gap, and overlong lines."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hostpipe.core.framing import PIPE_BUF, Framer, Line, Overlong


def test_splits_on_newlines_across_chunks():
    """A line split over two reads is one line; several lines in one read are several."""
    framer = Framer()
    assert framer.feed(b"docker run a\ndocker ") == [Line(b"docker run a")]
    assert framer.feed(b"run b\ndocker run c\n") == [Line(b"docker run b"), Line(b"docker run c")]
    assert not framer.pending


def test_unterminated_line_is_whole_after_flush():
    """Bytes without a newline wait; the quiet gap (flush) makes them a line."""
    framer = Framer()
    assert framer.feed(b"docker run x") == []
    assert framer.pending
    assert framer.flush() == [Line(b"docker run x")]
    assert framer.flush() == []


def test_overlong_line_is_one_frame_and_the_next_line_survives():
    """A line of PIPE_BUF bytes or more is kept as one Overlong frame; what follows its newline is intact."""
    framer = Framer()
    frames = framer.feed(b"a" * 3000) + framer.feed(b"b" * 3000 + b"\nnext\n")
    assert frames == [Overlong(b"a" * 256, 6000), Line(b"next")]


def test_longest_line_that_fits_with_its_newline_passes():
    """4095 bytes plus the newline is exactly PIPE_BUF: a whole, atomic write."""
    framer = Framer()
    assert framer.feed(b"x" * (PIPE_BUF - 1) + b"\n") == [Line(b"x" * (PIPE_BUF - 1))]
    assert framer.feed(b"x" * PIPE_BUF + b"\n") == [Overlong(b"x" * 256, PIPE_BUF)]


def test_overlong_unterminated_line_flushes_as_overlong():
    """An overlong line whose writer never sends a newline is still refused as one record."""
    framer = Framer()
    framer.feed(b"z" * 5000)
    assert framer.flush() == [Overlong(b"z" * 256, 5000)]


@given(st.lists(st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"")), max_size=30), st.data())
def test_any_chunking_gives_the_same_lines(lines, data):
    """However the stream is cut into reads, the same lines come out in the same order."""
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = Framer()
    frames = []
    start = 0
    for cut in [*cuts, len(stream)]:
        frames += framer.feed(stream[start:cut])
        start = cut
    assert frames == [Line(line) for line in lines]
