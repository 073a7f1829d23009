"""Case 7: the event loop while another process writes and fsyncs a large file on the same disk.

The daemon's own timer (hostpipe.daemon.looplag) measures how late its loop runs; its figures are read from
the control socket (`stats`, reset just before the write starts). Lines trickle in during the write, and
their line-to-start p99 says what a pod would notice. `dd conv=fsync` writes the file into the page cache and
then forces it to the disk in the same folder as the daemon's state, so the store's own writes and syncs
queue behind it: what a stall on the loop thread would show.
"""

from __future__ import annotations

import subprocess
import time
from functools import partial

from harness import Bench, hostpipe_running, job_lines, line_to_start_ms, outcomes, spread
from report import Figure
from stamps import wait_until_settled
from stats import percentile
from writers import Plan, run_writers

INTERVAL_S = 0.01


def disk_pressure(bench: Bench) -> list[Figure]:
    """Case 7: loop lag and line-to-start latency while another process writes and fsyncs on the same disk."""
    mb = bench.sizes.pressure_mb
    lines = job_lines("p", bench.sizes.pressure_lines, "bench/true")
    with hostpipe_running(bench, "7-pressure-hostpipe", bench.sizes.max_concurrent) as (daemon, stamps):
        big = daemon.root / "big"
        daemon.control({"op": "stats", "reset": True})
        began = time.monotonic()
        dd = subprocess.Popen(
            ["dd", "if=/dev/zero", f"of={big}", "bs=1M", f"count={mb}", "conv=fsync"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            plan = Plan(daemon.pipe, lines, time.monotonic() + 0.05, interval=INTERVAL_S, timeout=10)
            writes = run_writers([plan], timeout=len(lines) * INTERVAL_S + 60)
            dd_code = dd.wait(timeout=300)
        finally:
            dd.kill()
            dd.wait()
        dd_s = time.monotonic() - began
        lag = daemon.control({"op": "stats"})["loop_lag"]
        ids = {w.job_id for w in writes if w.ok}
        settled = wait_until_settled(stamps, ids, timeout=30, quiet=1.0)
        big.unlink(missing_ok=True)
    to_start = line_to_start_ms(writes, settled)
    bench.details["7-pressure"] = {
        "loop_lag": lag,
        "dd_exit": dd_code,
        "dd_s": dd_s,
        "write_outcomes": outcomes(writes),
        "lost": settled.lost(ids),
    }
    fig = partial(Figure, "7")
    setting = f"dd {mb} MB conv=fsync beside the state folder ({dd_s:.1f} s); {lag['ticks']} timer ticks"
    return [
        fig("event-loop lag max, disk busy", lag["max_ms"], "ms", ("<", 10), note=setting),
        fig("event-loop lag p99, disk busy", lag["p99_ms"], "ms", note="the daemon's timer, 10 ms period"),
        fig("line-to-start p99, disk busy", percentile(to_start, 99), "ms", note=spread(to_start)),
        fig("jobs lost, disk busy", settled.lost(ids), "", ("==", 0), note=f"{len(lines)} lines, 1 per 10 ms"),
    ]
