"""Cases 1, 4 and 5: how much work gets through, and whether any of it is lost or done twice.

1. A batch of short jobs from many writers: hostpipe against the old loop (makespan, lost, duplicated).
4. Instant jobs: hostpipe's spawn rate against `xargs -P` and `tsp -S` (when installed), all running the same
   stand-in; and hostpipe's CPU per spawned job.
5. Refused lines only: how fast hostpipe reads, decides and records lines it will not run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import store
from baselines import run_tsp, run_xargs
from harness import (
    Bench,
    first_write_ns,
    hostpipe_running,
    job_lines,
    line_to_start_ms,
    old_loop_running,
    outcomes,
    plans,
    record_check,
    spread,
    submit_ms,
)
from procstat import cpu_seconds_each, peak_rss_mb
from report import Figure
from stamps import Stamps, read_stamps, wait_for, wait_until_settled
from standin import write_standin
from stats import percentile, summary
from writers import Write, run_writers

RATIO_TARGET = 25.0  # stated for 200 jobs; a run with fewer jobs can gain less from running them at once
RATIO_TARGET_JOBS = 200


@dataclass
class Batch:
    """A batch of jobs written to one reader, and the stamps they left."""

    writes: list[Write]
    stamps: Stamps
    ids: set[str]

    @property
    def executed(self) -> int:
        return len(self.ids & self.stamps.starts.keys())

    @property
    def makespan_s(self) -> float | None:
        last = self.stamps.last_end()
        return None if last is None else (last - first_write_ns(self.writes)) / 1e9

    def details(self) -> dict[str, Any]:
        return {
            "makespan_s": self.makespan_s,
            "executed": self.executed,
            "lost": self.stamps.lost(self.ids),
            "duplicated": self.stamps.duplicated(),
            "write_outcomes": outcomes(self.writes),
            "submit_ms": summary(submit_ms(self.writes)),
            "line_to_start_ms": summary(line_to_start_ms(self.writes, self.stamps)),
        }


def _batch(pipe: Path, stamps: Path, lines: list[tuple[str, str]], writers: int, wait_s: float) -> Batch:
    # A write may block for the whole run (the old loop), so each write may take as long as the run.
    writes = run_writers(plans(pipe, lines, writers, timeout=wait_s), timeout=wait_s + 30)
    written = {w.job_id for w in writes if w.ok}
    settled = wait_until_settled(stamps, written, timeout=wait_s + 30, quiet=2.0)
    return Batch(writes, settled, {job_id for job_id, _ in lines})


def _ideal_ratio(jobs: int, max_concurrent: int) -> float:
    # Serial time over the time of full waves of max_concurrent jobs, with no overhead at all.
    return jobs / math.ceil(jobs / max_concurrent)


def _executed(batch: Batch) -> str:
    return f"{batch.executed} of {len(batch.ids)} executed"


def makespan(bench: Bench) -> list[Figure]:
    """Case 1: N short jobs from many writers, hostpipe against the old loop."""
    s = bench.sizes
    n, job_s = s.makespan_jobs, s.makespan_job_s
    lines = job_lines("m", n, "bench/sleep", str(job_s))
    with hostpipe_running(bench, "1-makespan-hostpipe", s.max_concurrent) as (daemon, stamps):
        new = _batch(daemon.pipe, stamps, lines, s.writers, wait_s=n * job_s + 30)
        new_rss = peak_rss_mb(daemon.pid)
        records = record_check(daemon.ps(), new.ids)
    with old_loop_running(bench, "1-makespan-old-loop") as (loop, stamps):
        old = _batch(loop.pipe, stamps, lines, s.writers, wait_s=2 * n * job_s + 30)
        old_rss = peak_rss_mb(loop.pid)
    bench.details["1-makespan"] = {
        "hostpipe": {**new.details(), "records": records, "peak_rss_mb": new_rss},
        "old loop": {**old.details(), "peak_rss_mb": old_rss},
    }
    setting = f"{n} jobs x {job_s} s, {s.writers} writers, max_concurrent {s.max_concurrent}"
    ratio = old.makespan_s / new.makespan_s if old.makespan_s and new.makespan_s else None
    target = RATIO_TARGET * _ideal_ratio(n, s.max_concurrent) / _ideal_ratio(RATIO_TARGET_JOBS, s.max_concurrent)
    scaled = "" if n == RATIO_TARGET_JOBS else f"target {RATIO_TARGET:g}x at {RATIO_TARGET_JOBS} jobs, scaled"
    fig = partial(Figure, "1")
    figures = [
        fig("hostpipe makespan", new.makespan_s, "s", note=setting),
        fig("old loop makespan", old.makespan_s, "s", note="runs one job at a time"),
        fig("makespan ratio old/hostpipe", ratio, "x", (">=", round(target, 1)), note=scaled),
        fig("hostpipe jobs lost", new.stamps.lost(new.ids), "", ("==", 0), note=_executed(new)),
        fig("hostpipe jobs duplicated", new.stamps.duplicated(), "", ("==", 0)),
        fig("hostpipe records (ps --json)", records["records"], "", ("==", n), note=str(records["states"])),
        fig("old loop jobs lost", old.stamps.lost(old.ids), note=f"{_executed(old)}; writes {outcomes(old.writes)}"),
        fig("old loop jobs duplicated", old.stamps.duplicated()),
    ]
    for name, batch, rss in (("hostpipe", new, new_rss), ("old loop", old, old_rss)):
        submit = submit_ms(batch.writes)
        to_start = line_to_start_ms(batch.writes, batch.stamps)
        figures += [
            fig(f"{name} submit p99", percentile(submit, 99), "ms", note=spread(submit)),
            fig(f"{name} line-to-start p99", percentile(to_start, 99), "ms", note=spread(to_start)),
            fig(f"{name} peak RSS", rss, "MB", note="VmHWM of the daemon / the loop's bash"),
        ]
    return figures


def spawn_rate(bench: Bench) -> list[Figure]:
    """Case 4: instant jobs through hostpipe against the same commands through `xargs -P` (and `tsp -S`)."""
    s = bench.sizes
    n = s.spawn_jobs
    lines = job_lines("s", n, "bench/true")
    ids = {job_id for job_id, _ in lines}
    with hostpipe_running(bench, "4-spawn-hostpipe", s.spawn_concurrency) as (daemon, stamps):
        pids = daemon.pids()
        cpu_before = cpu_seconds_each(pids)
        writes = run_writers(plans(daemon.pipe, lines, s.writers, timeout=10), timeout=60 + n / 50)
        counts, done_ns = store.wait_for_counts(
            daemon.state_dir, lambda c: store.terminal(c) >= n, timeout=60 + n / 20, poll=0.02
        )
        cpu_each = _cpu_per_item(cpu_before, cpu_seconds_each(pids), n)
        cpu_ms = sum(cpu_each) * 1000
        elapsed = (done_ns - first_write_ns(writes)) / 1e9
        records = record_check(daemon.ps(), ids)
        new_stamps = read_stamps(stamps)
    commands = [line.removeprefix("docker ") for _, line in lines]
    xargs_root = bench.root / "4-spawn-xargs"
    xargs_stamps = xargs_root / "stamps"
    bin_dir = write_standin(xargs_root / "bin", xargs_stamps).parent
    xargs_s = run_xargs(bin_dir, commands, s.xargs_parallel, timeout=60 + n / 20)
    old_stamps = wait_for(xargs_stamps, lambda st: st.ended >= n, timeout=5)
    tsp_s, tsp_ended = _tsp(bench, commands)
    new_rate, xargs_rate = n / elapsed, n / xargs_s
    bench.details["4-spawn"] = {
        "hostpipe": {
            "elapsed_s": elapsed,
            "write_outcomes": outcomes(writes),
            "state_counts": counts,
            "records": records,
            "started": new_stamps.started,
            "ended": new_stamps.ended,
            "cpu_ms_per_job": cpu_ms,
            "cpu_ms_per_job_each": _named(cpu_each, 1000),
            "processes_measured": len(pids),
        },
        "xargs": {"elapsed_s": xargs_s, "started": old_stamps.started, "ended": old_stamps.ended},
        "tsp": {"elapsed_s": tsp_s, "ended": tsp_ended},
    }
    setting = f"{n} jobs, max_concurrent {s.spawn_concurrency}"
    fig = partial(Figure, "4")
    succeeded = records["states"].get("succeeded", 0)
    cpu_note = f"user+system of holder, daemon and writer, jobs excluded, / jobs: {_split(cpu_each, 1000, 'ms')}"
    figures = [
        fig("hostpipe spawn rate", new_rate, "jobs/s", note=setting),
        fig("xargs spawn rate", xargs_rate, "jobs/s", note=f"xargs -P {s.xargs_parallel}, same stand-in"),
        fig("spawn rate ratio hostpipe/xargs", new_rate / xargs_rate, "x", (">=", 0.9), note="same lines, same round"),
    ]
    if tsp_s is None:
        figures.append(fig("tsp spawn rate", None, "jobs/s", note="task-spooler (tsp) not installed: left out"))
    else:
        tsp_rate = n / tsp_s
        tsp_note = f"tsp -S {s.xargs_parallel}, one `tsp -n` client per job; {tsp_ended} of {n} ended"
        figures += [
            fig("tsp spawn rate", tsp_rate, "jobs/s", note=tsp_note),
            fig("spawn rate ratio tsp/xargs", tsp_rate / xargs_rate, "x", note="same round"),
        ]
    return [
        *figures,
        fig("hostpipe jobs recorded succeeded", succeeded, "", ("==", n), note=_stamp_note(new_stamps)),
        fig("xargs jobs executed", old_stamps.ended, note=_stamp_note(old_stamps)),
        fig("hostpipe CPU per spawned job", cpu_ms, "ms", ("<=", 0.30), note=cpu_note),
    ]


def _tsp(bench: Bench, commands: list[str]) -> tuple[float | None, int]:
    """task-spooler's seconds from the first `tsp` client to the last job's end, and how many ended."""
    n = len(commands)
    root = bench.root / "4-spawn-tsp"
    stamps_path = root / "stamps"
    bin_dir = write_standin(root / "bin", stamps_path).parent
    timeout = 60 + n / 20
    began_ns = run_tsp(
        root,
        bin_dir,
        commands,
        bench.sizes.xargs_parallel,
        timeout=timeout,
        done=lambda: wait_for(stamps_path, lambda st: st.ended >= n, timeout=timeout),
    )
    if began_ns is None:
        return None, 0
    stamps = read_stamps(stamps_path)
    last = stamps.last_end()
    return (None if last is None else (last - began_ns) / 1e9), stamps.ended


def _cpu_per_item(before: list[float] | None, after: list[float] | None, items: int) -> list[float]:
    """CPU seconds per item of each process measured (holder, daemon, writer)."""
    if before is None or after is None:
        raise RuntimeError("the daemon exited while it was being measured")
    return [(a - b) / items for b, a in zip(before, after, strict=True)]


_PROCESSES = ("holder", "daemon", "writer")


def _named(each: list[float], scale: float) -> dict[str, float]:
    return {name: round(value * scale, 4) for name, value in zip(_PROCESSES, each, strict=False)}


def _split(each: list[float], scale: float, unit: str) -> str:
    return ", ".join(f"{name} {value:.3g}" for name, value in _named(each, scale).items()) + f" {unit}"


def _stamp_note(stamps: Stamps) -> str:
    return f"stamps: {stamps.started} started, {stamps.ended} ended"


def refusal_rate(bench: Bench) -> list[Figure]:
    """Case 5: refused lines as fast as a few writers can write them; how fast they are recorded."""
    s = bench.sizes
    n = s.refused_lines
    refused = ("ls -l .", "docker run --privileged bench/x")
    lines = [(f"r{i}", refused[i % 2]) for i in range(n)]
    with hostpipe_running(bench, "5-refusal-hostpipe", s.max_concurrent) as (daemon, _stamps):
        pids = daemon.pids()
        cpu_before = cpu_seconds_each(pids)
        writes = run_writers(plans(daemon.pipe, lines, s.refusal_writers, timeout=10), timeout=60 + n / 500)
        written = sum(w.ok for w in writes)
        # Every refused line is terminal when its row is committed: wait for the rows cheaply, then count once.
        done_ns = store.wait_for_rows(daemon.state_dir, written, timeout=60 + n / 500)
        counts = store.state_counts(daemon.state_dir)
        cpu_each = _cpu_per_item(cpu_before, cpu_seconds_each(pids), n)
        cpu_us = sum(cpu_each) * 1e6
        rss = peak_rss_mb(daemon.pid)
    elapsed = (done_ns - first_write_ns(writes)) / 1e9
    recorded = counts.get("refused", 0)
    bench.details["5-refusal"] = {
        "elapsed_s": elapsed,
        "written": written,
        "state_counts": counts,
        "write_outcomes": outcomes(writes),
        "peak_rss_mb": rss,
        "cpu_us_per_line": cpu_us,
        "cpu_us_per_line_each": _named(cpu_each, 1e6),
        "submit_ms": summary(submit_ms(writes)),
    }
    write_s = (max(w.began_ns for w in writes) - first_write_ns(writes)) / 1e9
    setting = f"{n} lines from {s.refusal_writers} writers; writing alone took {write_s:.2f} s"
    fig = partial(Figure, "5")
    return [
        fig("refused lines recorded per second", recorded / elapsed, "lines/s", (">=", 20_000), note=setting),
        fig("refused lines recorded", recorded, "", ("==", n), note=f"{written} written"),
        fig(
            "hostpipe CPU per refused line",
            cpu_us,
            "us",
            ("<=", 15),
            note=f"user+system of holder, daemon and writer / lines: {_split(cpu_each, 1e6, 'us')}",
        ),
        fig("submit p99 during the flood", percentile(submit_ms(writes), 99), "ms", note=spread(submit_ms(writes))),
        fig("hostpipe peak RSS", rss, "MB", note="VmHWM after the refusals"),
    ]
