"""Cases 2 and 3: how long a pod waits to hand over a line, and how long until its job starts.

2. Writes trickle in while long jobs run: hostpipe keeps reading, the old loop does not read at all while it
   runs a job, so a pod's `echo` blocks for the job's length (measured with a few writes, each with a
   timeout).
3. Lines trickle in below the concurrency limit: the time from a line being in the pipe to its job starting.
"""

from __future__ import annotations

import time
from functools import partial

from harness import (
    Bench,
    hostpipe_running,
    job_lines,
    line_to_start_ms,
    old_loop_running,
    outcomes,
    plans,
    spread,
    submit_ms,
)
from report import Figure
from stamps import wait_for, wait_until_settled
from stats import percentile, summary
from writers import Plan, run_writers

HOLD_S = "600"  # longer than any case; held jobs end when their reader is stopped


def submit_under_load(bench: Bench) -> list[Figure]:
    """Case 2: submit latency of trickling writes while long jobs run."""
    s = bench.sizes
    interval = s.trickle_interval_s
    held = job_lines("h", s.held_jobs, "bench/hold", HOLD_S)
    trickle = job_lines("t", round(s.trickle_s / interval), "bench/true")
    with hostpipe_running(bench, "2-submit-hostpipe", s.held_jobs + 64) as (daemon, stamps):
        run_writers(plans(daemon.pipe, held, s.writers, timeout=10), timeout=60)
        holding = wait_for(stamps, lambda st: st.started >= s.held_jobs, timeout=30).started
        plan = Plan(daemon.pipe, trickle, time.monotonic() + 0.05, interval=interval, timeout=5)
        writes = run_writers([plan], timeout=s.trickle_s + 60)
        ids = {w.job_id for w in writes if w.ok}
        settled = wait_for(stamps, lambda st: ids <= st.ends.keys(), timeout=30)

    with old_loop_running(bench, "2-submit-old-loop") as (loop, loop_stamps):
        run_writers(plans(loop.pipe, job_lines("lh", 1, "bench/hold", HOLD_S), 1, timeout=10), timeout=20)
        wait_for(loop_stamps, lambda st: st.started >= 1, timeout=10)
        start_at = time.monotonic() + 0.05
        blocked = [
            Plan(loop.pipe, [line], start_at + i * interval, timeout=s.loop_write_timeout_s)
            for i, line in enumerate(job_lines("lt", s.loop_blocked_writes, "bench/true"))
        ]
        old_writes = run_writers(blocked, timeout=s.loop_write_timeout_s + 30)

    submit, old_submit = submit_ms(writes), submit_ms(old_writes)
    to_start = line_to_start_ms(writes, settled)
    timed_out = outcomes(old_writes).get("timeout", 0)
    bench.details["2-submit"] = {
        "hostpipe": {
            "held_running": holding,
            "submit_ms": summary(submit),
            "write_outcomes": outcomes(writes),
            "line_to_start_ms": summary(to_start),
            "lost": settled.lost(ids),
        },
        "old loop": {"submit_ms": summary(old_submit), "write_outcomes": outcomes(old_writes)},
    }
    trickling = f"1 write / {interval * 1000:g} ms for {s.trickle_s:g} s; {spread(submit)}"
    blocked_note = f"{timed_out} of {len(old_writes)} writes timed out at {s.loop_write_timeout_s:g} s"
    fig = partial(Figure, "2")
    return [
        fig(f"hostpipe submit p99, {s.held_jobs} running", percentile(submit, 99), "ms", ("<", 5), trickling),
        fig("hostpipe held jobs running", holding, "", ("==", s.held_jobs)),
        fig("hostpipe trickled jobs lost", settled.lost(ids), "", ("==", 0)),
        fig("hostpipe line-to-start p99, trickle", percentile(to_start, 99), "ms", note=spread(to_start)),
        fig("old loop submit p99, 1 running", percentile(old_submit, 99), "ms", note=blocked_note),
    ]


def line_to_start(bench: Bench) -> list[Figure]:
    """Case 3: line-to-start latency while fewer jobs run than the limit allows."""
    s = bench.sizes
    interval = 0.01
    lines = job_lines("l", s.start_jobs, "bench/sleep", str(s.start_job_s))
    with hostpipe_running(bench, "3-start-hostpipe", s.max_concurrent) as (daemon, stamps):
        plan = Plan(daemon.pipe, lines, time.monotonic() + 0.05, interval=interval, timeout=5)
        writes = run_writers([plan], timeout=s.start_jobs * interval + 60)
        ids = {w.job_id for w in writes if w.ok}
        settled = wait_until_settled(stamps, ids, timeout=30, quiet=2.0)
    to_start = line_to_start_ms(writes, settled)
    peak = settled.peak_running()
    bench.details["3-start"] = {
        "line_to_start_ms": summary(to_start),
        "write_outcomes": outcomes(writes),
        "peak_running": peak,
        "lost": settled.lost(ids),
    }
    below = f"{spread(to_start)}; at most {peak} of {s.max_concurrent} running"
    fig = partial(Figure, "3")
    return [
        fig("hostpipe line-to-start p99", percentile(to_start, 99), "ms", ("<", 20), note=below),
        fig("hostpipe jobs lost", settled.lost({job_id for job_id, _ in lines}), "", ("==", 0)),
    ]
