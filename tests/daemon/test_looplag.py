"""The loop-lag monitor: a timer on a real event loop that measures its own lateness."""

from __future__ import annotations

import asyncio
import time

from hostpipe.daemon.control import request
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


def test_a_running_daemon_reports_its_loop_lag_over_the_control_socket(make_daemon) -> None:  # type: ignore[no-untyped-def]
    """`{"op": "stats"}` on control.sock answers with the loop's lateness in ms, and `reset` starts it afresh."""
    daemon = make_daemon()
    daemon.write("ls -l .\n")
    daemon.wait_records(1)
    time.sleep(0.3)  # the line made the monitor busy: a tick every 10 ms
    socket_path = daemon.state_dir / "control.sock"
    first = request(socket_path, {"op": "stats", "reset": True})
    assert first["ok"] is True
    lag = first["loop_lag"]
    assert set(lag) == {"max_ms", "p99_ms", "ticks"}
    assert lag["ticks"] >= 10 and 0 <= lag["p99_ms"] <= lag["max_ms"]
    again = request(socket_path, {"op": "stats"})["loop_lag"]
    assert again["ticks"] < lag["ticks"]
