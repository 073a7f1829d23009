"""Refused lines under a rate limit: a record of their own up to a limit, then one summary per pod and interval.

Every refused line is a record, and a record holds the whole line: a pod that writes refused lines as fast
as the pipe takes them grows the store by the size of each line, hundreds of megabytes a minute. So within
each interval (`refused_interval`, fixed windows of the wall clock) a pod's refused lines get records of their
own up to `refused_per_pod`, and all pods' together up to `refused_overall`. A line past either limit is
counted into its pod's summary for the interval instead: one record that says how many lines it stands for,
by rule, and keeps the first and the last of them. So every line is still accounted for: the records of the
interval plus the lines its summaries count are the lines that arrived.

Pod names are what a line says, so a flood can give every line a new one. At most `SUMMARIES` pods get a
summary of their own in an interval; lines of further pods go into one summary for the other pods. What an
interval can add to the store is therefore bounded whatever the lines say: `refused_overall` records and
`SUMMARIES + 1` summaries, and what this module keeps in memory is bounded the same way.

This is the accounting alone, without a clock or a store: the daemon (`hostpipe.daemon.refusals`) passes the
time, writes the summaries and commits their counts with the lines they count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hostpipe.core.durations import format_duration

SUMMARIES = 20
"""Pods that get a summary of their own in one interval; lines of further pods share one summary."""
RULE = "rate-limit"
"""The rule of a summary record."""


@dataclass(frozen=True)
class Limits:
    interval: float
    """Seconds in each window; windows start at multiples of it (epoch seconds)."""
    per_pod: int
    """Refused lines of one pod (or of lines without a pod) with a record of their own in a window."""
    overall: int
    """Refused lines of all pods together with a record of their own in a window."""
    summaries: int = SUMMARIES


@dataclass
class Summary:
    """The refused lines of one pod in one window that went over the limit."""

    key: str
    """A name unique to this summary, by which its record is brought up to date."""
    pod: str | None
    other_pods: bool
    """The summary of the lines of pods beyond the first `Limits.summaries` in the window."""
    window_start: float
    first_line: str
    first_at: float
    last_line: str = ""
    last_at: float = 0.0
    lines: int = 0
    rules: dict[str, int] = field(default_factory=dict)
    inserted: bool = False
    """Its record has been handed over to be written."""
    changed: bool = False
    """It counted lines since its record was last brought up to date."""

    def count(self, line: str, rule: str, now: float) -> None:
        self.lines += 1
        self.rules[rule] = self.rules.get(rule, 0) + 1
        self.last_line = line
        self.last_at = now
        self.changed = True


class RefusedLines:
    """Decides, line by line, whether a refused line gets a record of its own or is counted into a summary."""

    def __init__(self, limits: Limits, new_key: Callable[[], str]) -> None:
        self.limits = limits
        self._new_key = new_key
        self._window: int | None = None
        self._per_pod: dict[str | None, int] = {}
        """Records of each pod in the window; only pods that got a record are here (at most `overall`)."""
        self._records = 0
        self._summaries: dict[str | None, Summary] = {}
        self._others: Summary | None = None
        self._closed: list[Summary] = []

    def admit(self, pod: str | None, rule: str, line: str, now: float) -> bool:
        """True: the line gets its record. False: it was counted into its pod's summary for the window."""
        self._enter(now)
        limits = self.limits
        taken = self._per_pod.get(pod, 0)
        if taken < limits.per_pod and self._records < limits.overall:
            self._per_pod[pod] = taken + 1
            self._records += 1
            return True
        summary = self._summaries.get(pod)
        if summary is None:
            if len(self._summaries) < limits.summaries:
                summary = self._summaries[pod] = self._open(pod, line, now, other_pods=False)
            else:
                if self._others is None:
                    self._others = self._open(None, line, now, other_pods=True)
                summary = self._others
        summary.count(line, rule, now)
        return False

    def opened(self) -> list[Summary]:
        """Summaries opened since the last call, now handed over to be inserted."""
        fresh = [s for s in (*self._open_summaries(), *self._closed) if not s.inserted]
        for summary in fresh:
            summary.inserted = True
        return fresh

    def changed(self) -> list[Summary]:
        """Summaries (inserted ones) that counted lines since the last call; their counts are taken now."""
        touched = [s for s in (*self._open_summaries(), *self._closed) if s.inserted and s.changed]
        for summary in touched:
            summary.changed = False
        return touched

    def closed(self, now: float) -> list[Summary]:
        """Summaries of windows that have ended by `now`, each given once (after its last count was taken)."""
        self._enter(now)
        done = [s for s in self._closed if s.inserted and not s.changed]
        self._closed = [s for s in self._closed if not (s.inserted and not s.changed)]
        return done

    def unreported(self) -> list[Summary]:
        """Every summary not yet given by `closed`: those of the current window and of ended ones."""
        return [*self._closed, *self._open_summaries()]

    def open_keys(self) -> set[str]:
        """Keys of summaries whose records may still change: they must not be removed meanwhile."""
        return {s.key for s in (*self._open_summaries(), *self._closed)}

    def _open_summaries(self) -> list[Summary]:
        summaries = list(self._summaries.values())
        if self._others is not None:
            summaries.append(self._others)
        return summaries

    def _open(self, pod: str | None, line: str, now: float, *, other_pods: bool) -> Summary:
        start = (self._window or 0) * self.limits.interval
        return Summary(self._new_key(), pod, other_pods, start, line, now)

    def _enter(self, now: float) -> None:
        window = int(now // self.limits.interval)
        if window == self._window:
            return
        # A new window (or a clock set back): what the old one counted is complete.
        self._closed.extend(self._open_summaries())
        self._window = window
        self._per_pod.clear()
        self._records = 0
        self._summaries.clear()
        self._others = None


def reason(summary: Summary, limits: Limits) -> str:
    """What a summary record says about the lines it stands for."""
    rules = ", ".join(f"{rule} {count}" for rule, count in sorted(summary.rules.items(), key=lambda r: (-r[1], r[0])))
    if summary.other_pods:
        whose = f"of pods beyond the {limits.summaries} with a summary of their own in this interval"
    elif summary.pod is None:
        whose = "without a pod"
    else:
        whose = f"of pod {summary.pod}"
    return (
        f"{summary.lines} refused lines {whose} over the limit of {limits.per_pod} records a pod and "
        f"{limits.overall} in all every {format_duration(limits.interval)} (refused_per_pod, refused_overall, "
        f"refused_interval): each was refused by its own rule ({rules}) and is counted here instead of recorded "
        "alone; `line` is the first of them, `last_line` the last"
    )
