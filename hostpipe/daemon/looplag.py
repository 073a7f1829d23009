"""How late the event loop runs: a timer that measures its own lateness.

Everything the daemon does runs on one loop thread; a callback that blocks (a disk write, a slow system call)
delays every other one, the pipe's reads included. The monitor's timer is due every `period` seconds and notes
how late it actually ran: a stall of S seconds shows as a lateness of up to S. While the daemon is idle the
timer runs once a second, so that an idle daemon hardly wakes up; `busy()` (a line read, a job started) makes
it tick every `period` for a while. The control socket's `stats` request reports the maximum and p99 since the
last reset, and a lateness over `warn_after` is logged once per second at most.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("hostpipe.looplag")

PERIOD = 0.01
IDLE_PERIOD = 1.0
BUSY_FOR = 5.0
"""Seconds after the last activity during which the timer keeps its short period."""
WARN_AFTER = 0.1


class LoopLag:
    def __init__(
        self,
        *,
        period: float = PERIOD,
        warn_after: float = WARN_AFTER,
        samples: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._period = period
        self._warn_after = warn_after
        self._clock = clock
        self._samples: collections.deque[float] = collections.deque(maxlen=samples)
        self._max = 0.0
        self._busy_until = 0.0
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._last_warning = -math.inf

    def start(self) -> None:
        self._schedule(asyncio.get_running_loop(), self._period)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def busy(self) -> None:
        """Activity: measure with the short period for the next few seconds."""
        now = self._clock()
        if self._busy_until - now < BUSY_FOR - 1.0:
            self._busy_until = now + BUSY_FOR
            if self._handle is not None and self._due - now > self._period:
                self._handle.cancel()
                self._schedule(asyncio.get_running_loop(), self._period)

    def stats(self, *, reset: bool = False) -> dict[str, float | int]:
        """Lateness since the last reset, in ms: max, p99, and how many ticks were measured."""
        ordered = sorted(self._samples)
        p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] if ordered else 0.0
        result: dict[str, float | int] = {"max_ms": self._max * 1000, "p99_ms": p99 * 1000, "ticks": len(ordered)}
        if reset:
            self._samples.clear()
            self._max = 0.0
        return result

    def _schedule(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self._due = self._clock() + delay
        self._handle = loop.call_at(loop.time() + delay, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = self._clock()
        late = max(0.0, now - self._due)
        self._samples.append(late)
        self._max = max(self._max, late)
        if late > self._warn_after and now - self._last_warning >= 1.0:
            self._last_warning = now
            log.warning("event_loop_late", late_ms=round(late * 1000, 1))
        self._schedule(loop, self._period if now < self._busy_until else IDLE_PERIOD)
