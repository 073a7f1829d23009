"""The loop-lag monitor: a timer on a real event loop that measures its own lateness."""

from __future__ import annotations

import asyncio
import time

from hostpipe.daemon.looplag import LoopLag


def test_a_blocked_loop_shows_as_lateness_of_about_the_stall() -> None:
    """A callback that blocks the loop for 60 ms is reported as a lateness near 60 ms, and a reset clears it."""

    async def scenario() -> tuple[dict[str, float | int], dict[str, float | int]]:
        lag = LoopLag(period=0.005)
        lag.start()
        lag.busy()
        await asyncio.sleep(0.05)
        time.sleep(0.06)  # the stall: nothing else on the loop runs meanwhile
        await asyncio.sleep(0.05)
        stalled = lag.stats(reset=True)
        await asyncio.sleep(0.05)
        after = lag.stats()
        lag.stop()
        return stalled, after

    stalled, after = asyncio.run(scenario())
    assert 50 <= stalled["max_ms"] <= 200
    assert int(stalled["ticks"]) >= 5
    assert after["max_ms"] < 50


def test_an_idle_monitor_ticks_rarely() -> None:
    """Without activity the timer runs once a second, so an idle daemon is not woken a hundred times a second."""

    async def scenario() -> int:
        lag = LoopLag(period=0.005)
        lag.start()
        await asyncio.sleep(0.3)
        lag.stop()
        return int(lag.stats()["ticks"])

    assert asyncio.run(scenario()) <= 2
