"""The rate limit on refused lines, as pure accounting: every line is a record or counted in exactly one summary."""

from __future__ import annotations

import collections
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from hostpipe.core.ratelimit import Limits, RefusedLines, Summary, reason

LIMITS = Limits(interval=60.0, per_pod=3, overall=5, summaries=2)


def _limiter(limits: Limits = LIMITS) -> RefusedLines:
    keys = itertools.count()
    return RefusedLines(limits, new_key=lambda: f"k{next(keys)}")


class Daemon:
    """What the daemon does with the limiter: admit each line, then take the opened and changed summaries."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        self.limiter = _limiter(limits)
        self.recorded: list[tuple[str | None, str, float]] = []
        self.inserted: dict[str, Summary] = {}
        self.counts: dict[str, int] = {}
        """What the store says each summary counts: nothing on insert, the count on each update."""

    def batch(self, lines: list[tuple[str | None, str, float]]) -> None:
        for pod, line, now in lines:
            if self.limiter.admit(pod, "program", line, now):
                self.recorded.append((pod, line, now))
        for summary in self.limiter.opened():
            self.inserted[summary.key] = summary
            self.counts[summary.key] = 0
        for summary in self.limiter.changed():
            self.counts[summary.key] = summary.lines


def test_a_pod_gets_records_up_to_its_limit_then_one_summary_with_first_and_last_line():
    """Past refused_per_pod, a pod's lines go into one summary that keeps the first and the last of them."""
    daemon = Daemon()
    daemon.batch([("ns/a", f"line {i}", 10.0 + i) for i in range(10)])
    assert [line for _, line, _ in daemon.recorded] == ["line 0", "line 1", "line 2"]
    (summary,) = daemon.inserted.values()
    assert (summary.pod, summary.first_line, summary.last_line, summary.lines) == ("ns/a", "line 3", "line 9", 7)
    assert (summary.first_at, summary.last_at, summary.window_start) == (13.0, 19.0, 0.0)
    assert summary.rules == {"program": 7}


def test_overall_limit_sends_every_pod_to_its_summary():
    """Once refused_overall records are taken in a window, even a pod under its own limit is summarised."""
    daemon = Daemon()
    daemon.batch([("ns/a", "a", 1.0)] * 3 + [("ns/b", "b", 2.0)] * 2 + [("ns/c", "c", 3.0)])
    assert len(daemon.recorded) == 5
    assert [(s.pod, s.lines) for s in daemon.inserted.values()] == [("ns/c", 1)]


def test_pods_beyond_the_summary_limit_share_one_summary():
    """A flood that names a new pod on every line adds at most `summaries` + 1 summaries a window."""
    daemon = Daemon()
    daemon.batch([(f"ns/p{i}", f"line {i}", 1.0) for i in range(1000)])
    assert len(daemon.recorded) == 5
    summaries = list(daemon.inserted.values())
    assert [(s.pod, s.other_pods, s.lines) for s in summaries] == [
        ("ns/p5", False, 1),
        ("ns/p6", False, 1),
        (None, True, 993),
    ]
    assert (summaries[2].first_line, summaries[2].last_line) == ("line 7", "line 999")
    assert "beyond the 2" in reason(summaries[2], LIMITS)


def test_a_new_window_gives_records_again_and_closes_the_old_summaries():
    """Summaries of an ended window are given once by `closed`; the next window starts its counts afresh."""
    daemon = Daemon()
    daemon.batch([("ns/a", "x", 59.0)] * 5)
    (first,) = daemon.inserted.values()
    assert daemon.limiter.closed(59.5) == []
    daemon.batch([("ns/a", "y", 61.0)] * 5)
    assert [line for _, line, _ in daemon.recorded] == ["x"] * 3 + ["y"] * 3
    assert daemon.limiter.closed(61.5) == [first]
    assert daemon.limiter.closed(61.5) == []
    second = [s for s in daemon.inserted.values() if s is not first]
    assert [(s.lines, s.window_start) for s in second] == [(2, 60.0)]


def test_counts_are_taken_once_per_batch_after_the_insert():
    """`changed` gives a summary only when it counted lines since the last batch, and never before its insert."""
    daemon = Daemon()
    daemon.batch([("ns/a", "x", 1.0)] * 4)
    assert daemon.limiter.changed() == []
    daemon.batch([("ns/a", "x", 2.0)] * 2)
    (summary,) = daemon.inserted.values()
    assert daemon.counts[summary.key] == 3
    daemon.batch([])
    assert daemon.counts[summary.key] == 3


def test_a_batch_across_a_window_boundary_inserts_and_counts_both_summaries():
    """Lines of one batch on both sides of a boundary: the old window's summary is written before it closes."""
    daemon = Daemon()
    daemon.batch([("ns/a", "x", 59.0)] * 5 + [("ns/a", "y", 60.0)] * 5)
    assert sorted(daemon.counts.values()) == [2, 2]
    assert {s.key for s in daemon.limiter.closed(61.0)} == {s.key for s in daemon.inserted.values() if s.first_at < 60}


def test_open_keys_cover_every_summary_that_may_still_change():
    """Retention must leave alone the records of summaries still counting, the just-closed ones too."""
    daemon = Daemon()
    daemon.batch([("ns/a", "x", 1.0)] * 5)
    (summary,) = daemon.inserted.values()
    assert daemon.limiter.open_keys() == {summary.key}
    daemon.batch([("ns/b", "x", 70.0)])
    assert daemon.limiter.open_keys() == {summary.key}
    daemon.limiter.closed(70.0)
    assert daemon.limiter.open_keys() == set()


def test_limits_of_zero_summarise_every_line():
    """refused_overall = 0: no refused line gets a record of its own, and every one is still counted."""
    daemon = Daemon(Limits(interval=1.0, per_pod=0, overall=0, summaries=1))
    daemon.batch([("ns/a", "x", 0.5), (None, "y", 0.6), ("ns/b", "z", 0.7)])
    assert daemon.recorded == []
    assert [(s.pod, s.other_pods, s.lines) for s in daemon.inserted.values()] == [("ns/a", False, 1), (None, True, 2)]


EVENTS = st.lists(
    st.tuples(st.sampled_from([None, "ns/a", "ns/b", "ns/c", "ns/d"]), st.floats(0, 30), st.booleans()),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(EVENTS, st.integers(0, 4), st.integers(0, 8), st.integers(0, 3))
def test_every_line_is_accounted_for_exactly_once(events, per_pod, overall, summaries):
    """Records plus the counts the store holds for summaries equal the lines, and each window stays bounded."""
    limits = Limits(interval=10.0, per_pod=per_pod, overall=overall, summaries=summaries)
    daemon = Daemon(limits)
    now = 0.0
    batch: list[tuple[str | None, str, float]] = []
    for number, (pod, step, end_batch) in enumerate(events):
        now += step
        batch.append((pod, f"line {number}", now))
        if end_batch:
            daemon.batch(batch)
            batch = []
    daemon.batch(batch)
    assert len(daemon.recorded) + sum(daemon.counts.values()) == len(events)
    per_window = collections.Counter(now // 10 for _, _, now in daemon.recorded)
    per_pod = collections.Counter((now // 10, pod) for pod, _, now in daemon.recorded)
    assert all(count <= overall for count in per_window.values())
    assert all(count <= limits.per_pod for count in per_pod.values())
    windows: dict[float, list[Summary]] = {}
    for summary in daemon.inserted.values():
        windows.setdefault(summary.window_start, []).append(summary)
        assert summary.lines == daemon.counts[summary.key] >= 1
    for members in windows.values():
        assert len(members) <= summaries + 1
        assert len({(s.pod, s.other_pods) for s in members}) == len(members)
