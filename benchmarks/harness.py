"""What every case shares: run sizes, a fresh reader per case, and the measures taken from writes and stamps.

Each case runs its reader in a folder of its own under one temporary root, with its own stand-in runtime and
stamp file; the context managers below always stop the reader and kill what it left behind, and note for
hostpipe how it stopped (exit code, seconds, jobs that outlived it).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import processes
from baselines import OldLoop
from daemon import Hostpipe
from stamps import Stamps
from standin import write_standin
from stats import summary
from writers import Plan, Write, split


@dataclass(frozen=True)
class Sizes:
    """How big each case is; `QUICK` keeps the whole run under a minute on two busy cores."""

    makespan_jobs: int = 200
    makespan_job_s: float = 0.2
    writers: int = 16
    held_jobs: int = 64
    trickle_s: float = 10.0
    trickle_interval_s: float = 0.01
    loop_blocked_writes: int = 5
    loop_write_timeout_s: float = 5.0
    start_jobs: int = 200
    start_job_s: float = 0.1
    spawn_jobs: int = 2000
    spawn_concurrency: int = 16
    xargs_parallel: int = 16
    refused_lines: int = 100_000
    refusal_writers: int = 4
    rss_jobs: int = 1000
    pressure_mb: int = 200
    pressure_lines: int = 300
    cli_runs: int = 9
    query_records: int = 1_000_000
    json_records: int = 100_000
    max_concurrent: int = 64  # hostpipe's default, used wherever a case does not need more


QUICK = Sizes(
    makespan_jobs=40,
    trickle_s=2.0,
    loop_write_timeout_s=1.0,
    start_jobs=100,
    spawn_jobs=400,
    refused_lines=10_000,
    rss_jobs=200,
    pressure_mb=50,
    pressure_lines=100,
    cli_runs=1,
    query_records=100_000,
    json_records=10_000,
)


@dataclass
class Bench:
    """One run: where it works, how big it is, how to start hostpipe, and what it has collected so far."""

    repo: Path
    root: Path
    sizes: Sizes
    hostpipe: list[str]
    ready_s: list[float] = field(default_factory=list)
    writable_s: list[float] = field(default_factory=list)
    stops: dict[str, dict[str, Any]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@contextmanager
def hostpipe_running(bench: Bench, name: str, max_concurrent: int) -> Iterator[tuple[Hostpipe, Path]]:
    """A ready daemon in `bench.root/name`, and its stamp file; stopped with SIGTERM on the way out."""
    root = bench.root / name
    stamps = root / "stamps"
    bin_dir = write_standin(root / "bin", stamps).parent
    daemon = Hostpipe(bench.hostpipe, bench.repo, root, bin_dir, max_concurrent)
    try:
        daemon.start()
        bench.ready_s.append(daemon.ready_s or 0.0)
        bench.writable_s.append(daemon.writable_s or 0.0)
        yield daemon, stamps
    finally:
        stop = daemon.stop()
        stop["jobs_outliving_daemon"] = processes.sweep_jobs(stamps)
        bench.stops[name] = stop


@contextmanager
def old_loop_running(bench: Bench, name: str) -> Iterator[tuple[OldLoop, Path]]:
    """The old shell loop in `bench.root/name`, and its stamp file; killed with its group on the way out."""
    root = bench.root / name
    stamps = root / "stamps"
    loop = OldLoop(root, write_standin(root / "bin", stamps).parent)
    try:
        loop.start()
        yield loop, stamps
    finally:
        loop.stop()


def job_lines(prefix: str, n: int, image: str, *args: str) -> list[tuple[str, str]]:
    """(job id, `docker run IMAGE ID ARGS`) for n jobs with ids PREFIX0..PREFIXn-1."""
    return [(f"{prefix}{i}", " ".join(["docker", "run", image, f"{prefix}{i}", *args])) for i in range(n)]


def plans(pipe: Path, lines: Sequence[tuple[str, str]], writers: int, timeout: float) -> list[Plan]:
    """Writers that all start together shortly from now and write their share as fast as they can."""
    start_at = time.monotonic() + 0.1
    return [Plan(pipe, share, start_at, timeout=timeout) for share in split(lines, writers)]


def first_write_ns(writes: Iterable[Write]) -> int:
    return min(w.began_ns for w in writes if w.began_ns)


def submit_ms(writes: Iterable[Write]) -> list[float]:
    """Open+write+close per line in ms; a timed-out write counts with the time it was blocked."""
    return [w.latency_s * 1000 for w in writes if w.outcome != "no result"]


def line_to_start_ms(writes: Iterable[Write], stamps: Stamps) -> list[float]:
    """From the moment a line was in the pipe to its job's start stamp, in ms."""
    return [
        (stamps.starts[w.job_id][0] - w.written_ns) / 1e6
        for w in writes
        if w.written_ns is not None and w.job_id in stamps.starts
    ]


def outcomes(writes: Iterable[Write]) -> dict[str, int]:
    return dict(collections.Counter(w.outcome for w in writes))


def record_check(records: Iterable[dict[str, Any]], ids: set[str]) -> dict[str, Any]:
    """What `hostpipe ps --json` says of the jobs in `ids`: how many records, of which ids, in what states."""
    per_id: collections.Counter[str] = collections.Counter()
    states: collections.Counter[str] = collections.Counter()
    for record in records:
        matches = ids.intersection(record.get("argv") or [])
        if matches:
            per_id.update(matches)
            states[str(record.get("state"))] += 1
    return {
        "records": sum(per_id.values()),
        "ids_recorded": len(per_id),
        "duplicated": sum(n - 1 for n in per_id.values()),
        "states": dict(states),
    }


def spread(values: Sequence[float], unit: str = "ms") -> str:
    """'p50 X, max Y' for a figure's note."""
    s = summary(values)
    return f"p50 {_fmt(s['p50'])}, max {_fmt(s['max'])} {unit}; n={s['n']}"


def _fmt(value: float | int | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"
