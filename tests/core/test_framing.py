"""Cutting the byte stream into lines: newlines, reads that empty the pipe, and overlong runs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hostpipe.core.framing import PIPE_BUF, Framer, Line, Overlong


def test_splits_on_newlines_across_reads_that_did_not_empty_the_pipe():
    """A line split over two reads of one stretch of the pipe is one line; several in one read are several."""
    framer = Framer()
    assert framer.feed(b"docker run a\ndocker ", emptied=False) == [Line(b"docker run a", 13)]
    assert framer.feed(b"run b\ndocker run c\n", emptied=True) == [
        Line(b"docker run b", 26),
        Line(b"docker run c", 39),
    ]
    assert not framer.pending


def test_bytes_without_newline_are_cut_off_where_a_read_emptied_the_pipe():
    """An unterminated write is its own refused line, never joined to what a later write brings."""
    framer = Framer()
    assert framer.feed(b"docker run x", emptied=True) == [Line(b"docker run x", 12, terminated=False)]
    assert not framer.pending
    assert framer.feed(b"docker run y\n", emptied=True) == [Line(b"docker run y", 25)]


def test_a_trickling_writer_makes_one_line_per_read_and_touches_no_other_line():
    """One byte per read: each byte is cut off alone, and a whole line arriving in between stays whole."""
    framer = Framer()
    frames = framer.feed(b"d", emptied=True) + framer.feed(b"docker run ok\n", emptied=True)
    frames += framer.feed(b"o", emptied=True)
    assert frames == [
        Line(b"d", 1, terminated=False),
        Line(b"docker run ok", 15),
        Line(b"o", 16, terminated=False),
    ]


def test_overlong_run_is_one_frame_and_the_next_line_survives():
    """A run of PIPE_BUF bytes or more is kept as one Overlong frame; what follows its newline is intact."""
    framer = Framer()
    frames = framer.feed(b"a" * 3000, emptied=False) + framer.feed(b"b" * 3000 + b"\nnext\n", emptied=True)
    assert frames == [Overlong(b"a" * 256, 6000, 6001), Line(b"next", 6006)]


def test_overlong_run_ends_where_a_read_emptied_the_pipe():
    """A writer that never sends a newline after 5000 bytes is refused once; framing starts clean after it."""
    framer = Framer()
    assert framer.feed(b"z" * 5000, emptied=True) == [Overlong(b"z" * 256, 5000, 5000)]
    assert framer.feed(b"docker run ok\n", emptied=True) == [Line(b"docker run ok", 5014)]


def test_longest_line_that_fits_with_its_newline_passes():
    """4095 bytes plus the newline is exactly PIPE_BUF: a whole, atomic write."""
    framer = Framer()
    assert framer.feed(b"x" * (PIPE_BUF - 1) + b"\n", emptied=True) == [Line(b"x" * (PIPE_BUF - 1), PIPE_BUF)]
    assert framer.feed(b"x" * PIPE_BUF + b"\n", emptied=True) == [Overlong(b"x" * 256, PIPE_BUF, 2 * PIPE_BUF + 1)]


def test_positions_continue_from_where_the_framer_started():
    """Frame ends count from the given start, so they name places in the inbox file."""
    framer = Framer(position=100)
    assert framer.feed(b"a\nb\n", emptied=True) == [Line(b"a", 102), Line(b"b", 104)]
    assert framer.position == 104


@given(st.lists(st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"")), max_size=30), st.data())
def test_any_cutting_into_reads_gives_the_same_lines(lines, data):
    """However one stretch of the pipe is cut into reads, the same terminated lines come out in order."""
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = Framer()
    frames = []
    start = 0
    for cut in [*cuts, len(stream)]:
        frames += framer.feed(stream[start:cut], emptied=cut == len(stream))
        start = cut
    assert [f.data for f in frames if isinstance(f, Line)] == lines
    assert all(isinstance(f, Line) and f.terminated for f in frames)
    assert [f.end for f in frames] == [len(b"".join(x + b"\n" for x in lines[: i + 1])) for i in range(len(lines))]


@given(st.binary(max_size=3000), st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")))
def test_whatever_came_before_a_read_that_emptied_the_pipe_cannot_reach_later_lines(junk, line):
    """After any bytes ending a read that emptied the pipe, a following newline-terminated line comes out whole."""
    framer = Framer()
    framer.feed(junk, emptied=True)
    assert not framer.pending
    (frame,) = framer.feed(line + b"\n", emptied=True)
    assert frame == Line(line, len(junk) + len(line) + 1)
