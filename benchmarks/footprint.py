"""Case 6 and the shutdown check: what the daemon costs to keep around, to start, and to stop.

Memory is read from /proc (see procstat): idle once the daemon is ready, and while it supervises many long
jobs. Start-up is sampled at every daemon start of the run. Every daemon is stopped with SIGTERM, and the
shutdown figures say whether each exited 0 and left no job behind.
"""

from __future__ import annotations

import time
from functools import partial

from harness import Bench, hostpipe_running, job_lines, outcomes, plans, spread
from latency import HOLD_S
from procstat import peak_rss_mb, rss_mb
from report import Figure
from stamps import wait_for
from stats import percentile
from writers import run_writers

IDLE_SETTLE_S = 0.5  # let start-up garbage be collected before calling the daemon idle


def _sampled_rss(pid: int, samples: int = 5, every: float = 0.1) -> float | None:
    values = []
    for _ in range(samples):
        if (value := rss_mb(pid)) is not None:
            values.append(value)
        time.sleep(every)
    return max(values, default=None)


def footprint(bench: Bench) -> list[Figure]:
    """Case 6: RSS idle and with many jobs running, and the time to get ready."""
    s = bench.sizes
    n = s.rss_jobs
    name = "6-footprint-hostpipe"
    with hostpipe_running(bench, name, n + 16) as (daemon, stamps):
        time.sleep(IDLE_SETTLE_S)
        idle = rss_mb(daemon.pid)
        lines = job_lines("k", n, "bench/hold", HOLD_S)
        writes = run_writers(plans(daemon.pipe, lines, s.writers, timeout=10), timeout=60 + n / 50)
        running = wait_for(stamps, lambda st: st.started >= n, timeout=60 + n / 20, poll=0.1).started
        busy = _sampled_rss(daemon.pid)
        peak = peak_rss_mb(daemon.pid)
    stop = bench.stops[name]
    bench.details["6-footprint"] = {
        "idle_rss_mb": idle,
        "busy_rss_mb": busy,
        "peak_rss_mb": peak,
        "running": running,
        "write_outcomes": outcomes(writes),
        "stop": stop,
        "ready_s": bench.ready_s,
        "fifo_writable_s": bench.writable_s,
    }
    starts = f"over {len(bench.ready_s)} daemon starts"
    ready_note = f"{starts}; {spread(bench.ready_s, 's')}"
    writable_note = f"{starts}; {spread(bench.writable_s, 's')}"
    stop_note = f"SIGTERM to exit, exit code {stop.get('exit_code')}"
    sampled = f"max VmRSS of 5 samples with {running} running; VmHWM {peak or 0:.1f} MB"
    fig = partial(Figure, "6")
    return [
        fig("hostpipe idle RSS", idle, "MB", ("<", 40), note=f"VmRSS {IDLE_SETTLE_S:g} s after ready"),
        fig(f"hostpipe RSS, {n} jobs running", busy, "MB", ("<", 60), note=sampled),
        fig("start to ready p50", percentile(bench.ready_s, 50), "s", ("<", 0.3), note=ready_note),
        fig("start to FIFO writable p50", percentile(bench.writable_s, 50), "s", note=writable_note),
        fig(f"stop with {running} running", stop.get("stop_s"), "s", note=stop_note),
    ]


def shutdown(bench: Bench) -> list[Figure]:
    """Over every daemon of the run: exits other than 0 on SIGTERM, and jobs still alive after it exited."""
    bad_exits = [name for name, stop in bench.stops.items() if stop.get("exit_code") != 0]
    outliving = sum(stop.get("jobs_outliving_daemon", 0) for stop in bench.stops.values())
    fig = partial(Figure, "all")
    return [
        fig("daemons not exiting 0 on SIGTERM", len(bad_exits), "", ("==", 0), note=", ".join(bad_exits)),
        fig("jobs outliving their daemon", outliving, "", ("==", 0), note=f"{len(bench.stops)} daemons"),
    ]
