"""The rate limit on refused lines, in the daemon: summaries written and committed with the lines they count.

`hostpipe.core.ratelimit` decides which refused lines get a record of their own. A line that does not is
counted into its pod's summary for the interval, and nothing else of it is kept. Its bytes lie in the inbox,
and the inbox position committed with each batch says which lines are recorded; a line counted only in memory
would be lost, uncounted, by a crash after its position was committed. So a summary is a record from the
batch in which its first line arrives, and every later batch that counts lines into it brings its count up to
date (`summary` in the writer) in the same transaction as the inbox position that moves past those lines. A
crash therefore leaves each summary counting exactly the lines up to the committed position; the next daemon
decides the lines after it again, and they get records, or a summary, of their own. Nothing is counted twice
or lost; a pod may then have two summaries for one interval.
"""

from __future__ import annotations

import collections
import secrets
from collections.abc import Callable

import structlog

from hostpipe.core.job import JobState
from hostpipe.core.policy import Policy
from hostpipe.core.ratelimit import RULE, Limits, RefusedLines, Summary, reason
from hostpipe.daemon.events import Listener
from hostpipe.daemon.store import NewJob, Store

log = structlog.get_logger("hostpipe.refusals")


def limits_of(policy: Policy) -> Limits:
    return Limits(interval=policy.refused_interval, per_pod=policy.refused_per_pod, overall=policy.refused_overall)


class RefusalLimit(Listener):
    """The daemon's side of the rate limit: records for summaries, their counts, one log event per interval."""

    def __init__(self, policy: Callable[[], Policy]) -> None:
        self._policy = policy
        self._lines = RefusedLines(limits_of(policy()), new_key=lambda: secrets.token_hex(12))
        self.summarised: collections.Counter[str] = collections.Counter()
        """Refused lines counted into summaries so far, by the rule that refused them, for the metrics."""

    def admit(self, record: NewJob, now: float) -> bool:
        """True: the refused line gets its record. False: it is counted into its pod's summary instead."""
        rule = record.rule or ""
        if self._lines.admit(record.pod, rule, record.line, now):
            return True
        self.summarised[rule] += 1
        return False

    def opened(self) -> list[NewJob]:
        """Records of the summaries opened since the last call, to insert with the batch."""
        limits = self._lines.limits
        records = []
        for summary in self._lines.opened():
            log.warning(
                "refused_lines_over_limit",
                pod=summary.pod,
                other_pods=summary.other_pods,
                per_pod=limits.per_pod,
                overall=limits.overall,
                interval=limits.interval,
                note="further refused lines of this interval are counted into one summary record per pod",
            )
            record = NewJob(summary.first_line, JobState.REFUSED, summary.first_at, pod=summary.pod, rule=RULE)
            records.append(record._replace(reason=reason(summary, limits), summary=summary.key))
        return records

    def write_counts(self, store: Store) -> None:
        """Queue the counts of the summaries that changed, before the inbox position of the batch is queued."""
        limits = self._lines.limits
        for summary in self._lines.changed():
            row = (summary.lines, summary.last_line, reason(summary, limits), summary.last_at, summary.key)
            store.write("summary", row)

    def open_keys(self) -> set[str]:
        """Summaries whose records still change: retention leaves them alone."""
        return self._lines.open_keys()

    def tick(self, now: float) -> None:
        self._lines.limits = limits_of(self._policy())
        self._report(self._lines.closed(now))

    def close(self) -> None:
        """The daemon stops: say what the open interval counted."""
        self._report(self._lines.unreported())

    def _report(self, summaries: list[Summary]) -> None:
        if not summaries:
            return
        log.warning(
            "refused_lines_summarised",
            lines=sum(s.lines for s in summaries),
            pods={("(other pods)" if s.other_pods else s.pod or "(none)"): s.lines for s in summaries},
            interval_start=min(s.window_start for s in summaries),
        )
