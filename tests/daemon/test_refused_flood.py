"""One pod floods the pipe with refused lines: every line is accounted for, and the store stays small.

Measured before the rate limit: 20,000 refused 4 KiB lines from one pod grew the store by 177 MB (one record
of some 9 KB per line). Now a pod's refused lines get records of their own up to `refused_per_pod` a window,
and the rest are counted into one summary record per pod and window that keeps the first and the last line.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

from hostpipe.daemon.records import JobRecord, Reader
from tests.conftest import Daemon, wait_for

LINES = 20_000
POLICY = 'max_concurrent = 8\nkill_grace = "1s"\n[runtimes.docker]\n'


def flood_line(number: int) -> bytes:
    """A refused line (`ls` is no runtime) of 4096 bytes with its newline: PIPE_BUF, so it reaches the pipe whole."""
    text = f"HOSTPIPE_POD=ns/flood ls {number:05d} "
    return (text + "A" * (4095 - len(text)) + "\n").encode()


def number_of(line: str) -> int:
    return int(line.split()[2])


def flood(pipe: Path, count: int = LINES) -> float:
    """Write `count` lines as fast as one writer can; return the seconds it took."""
    started = time.monotonic()
    fd = os.open(pipe, os.O_WRONLY)
    try:
        for number in range(count):
            os.write(fd, flood_line(number))
    finally:
        os.close(fd)
    return time.monotonic() - started


def records(daemon: Daemon) -> list[JobRecord]:
    try:
        reader = Reader(daemon.state_dir)
    except Exception:
        return []
    try:
        return reader.jobs()
    finally:
        reader.close()


def accounted(daemon: Daemon) -> int:
    return sum(r.lines or 1 for r in records(daemon))


def store_bytes(state_dir: Path) -> int:
    return sum(p.stat().st_size for p in state_dir.glob("hostpipe.sqlite3*"))


def assert_each_line_once(found: list[JobRecord], count: int) -> tuple[list[JobRecord], list[JobRecord]]:
    """Records and summaries cut the lines, in the order written, into runs that cover each line exactly once."""
    own = [r for r in found if r.lines is None]
    summaries = [r for r in found if r.lines is not None]
    covered: list[tuple[int, int]] = [(number_of(r.line), number_of(r.line)) for r in own]
    for summary in summaries:
        assert summary.last_line is not None
        first, last = number_of(summary.line), number_of(summary.last_line)
        assert summary.lines == last - first + 1, "a summary counts exactly the run of lines from its first to its last"
        covered.append((first, last))
    covered.sort()
    assert covered[0][0] == 0 and covered[-1][1] == count - 1
    for (_, end), (start, _) in itertools.pairwise(covered):
        assert start == end + 1, f"lines {end + 1}..{start - 1} are missing or counted twice"
    return own, summaries


def test_a_20000_line_refused_flood_is_accounted_for_and_keeps_the_store_small(make_daemon):
    """Records plus the lines summaries count equal the lines written, and the store grows by kilobytes, not 177 MB."""
    daemon: Daemon = make_daemon(POLICY)
    daemon.write("HOSTPIPE_POD=ns/other docker run test/x\n")
    wait_for(lambda: records(daemon))
    before = store_bytes(daemon.state_dir)
    seconds = flood(daemon.pipe)
    wait_for(lambda: accounted(daemon) == LINES + 1, timeout=120, interval=0.2)
    found = [r for r in records(daemon) if r.pod == "ns/flood"]
    own, summaries = assert_each_line_once(found, LINES)
    windows = len(summaries)
    # Ten records of their own per pod and window (refused_per_pod), the rest in one summary per window.
    assert 1 <= windows <= 1 + int(seconds // 60) + 1
    assert len(own) == 10 * windows
    for summary in summaries:
        assert (summary.state.value, summary.rule, summary.pod) == ("refused", "rate-limit", "ns/flood")
        assert summary.reason is not None and f"program {summary.lines}" in summary.reason
        assert summary.submitted_at <= (summary.ended_at or 0)
    grown = store_bytes(daemon.state_dir) - before
    assert daemon.stop() == 0
    assert grown < 4 << 20, f"the store grew by {grown} bytes"
    assert store_bytes(daemon.state_dir) < 2 << 20
    events = daemon.events()
    over = [e for e in events if e["event"] == "refused_lines_over_limit"]
    assert [e["pod"] for e in over] == ["ns/flood"] * windows
    told = [e for e in events if e["event"] == "refused_lines_summarised"]
    assert sum(e["lines"] for e in told) == LINES - len(own)
    print(f"\n{LINES} lines in {seconds:.1f}s: {len(own)} records, {windows} summaries, store +{grown} bytes")


def test_a_daemon_killed_during_the_flood_loses_and_doubles_no_line(make_daemon):
    """SIGKILL while summaries are counting: each counts the lines up to the committed inbox position, no more."""
    daemon: Daemon = make_daemon(POLICY)
    writer = threading.Thread(target=flood, args=(daemon.pipe,))
    writer.start()
    try:
        wait_for(lambda: any((r.lines or 0) > 2000 for r in records(daemon)), timeout=60, interval=0.05)
        daemon.kill_daemon()
    finally:
        writer.join(120)
    wait_for(lambda: accounted(daemon) == LINES, timeout=120, interval=0.2)
    time.sleep(1.5)  # nothing more arrives: no line was counted twice
    found = records(daemon)
    assert accounted(daemon) == LINES
    own, summaries = assert_each_line_once(found, LINES)
    # The next daemon counts afresh: its own records of the window, and a summary of its own.
    assert len(summaries) >= 2 and len(own) >= 20
    assert daemon.stop() == 0


def test_a_flood_that_names_a_new_pod_on_every_line_adds_a_bounded_number_of_records(make_daemon):
    """Pod names are what lines say: past refused_overall records, 20 pods get summaries and the rest share one."""
    daemon: Daemon = make_daemon('refused_interval = "1d"\n' + POLICY)
    count = 3000
    fd = os.open(daemon.pipe, os.O_WRONLY)
    try:
        for number in range(count):
            os.write(fd, f"HOSTPIPE_POD=ns/p{number} ls {number:05d}\n".encode())
    finally:
        os.close(fd)
    wait_for(lambda: accounted(daemon) == count, timeout=60, interval=0.2)
    found = records(daemon)
    own, summaries = assert_each_line_once(found, count)
    assert len(own) == 60  # refused_overall
    assert [(s.pod, s.lines) for s in summaries[:20]] == [(f"ns/p{n}", 1) for n in range(60, 80)]
    others = summaries[20:]
    assert [(o.pod, o.lines, o.line, o.last_line) for o in others] == [
        (None, count - 80, "HOSTPIPE_POD=ns/p80 ls 00080", f"HOSTPIPE_POD=ns/p{count - 1} ls {count - 1:05d}")
    ]
    assert others[0].reason is not None and "beyond the 20" in others[0].reason
    assert daemon.stop() == 0
