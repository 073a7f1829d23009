"""Cases 8 and 9: the CLI on an idle machine, and queries on a large store.

8. `hostpipe ps --last 20`, `status`, `show`, `logs` and `check` as whole processes (wall time, median of
   several runs), on a store of `json_records` records built directly with sqlite. Commands this CLI does not
   have are listed without a figure. Then unfiltered `ps --json` on that store: its peak RSS against the same
   command on a store of 1,000 records says whether it streams in bounded memory.
9. `ps --state running` on a store of `query_records` records: the query's own time (timed inside one
   process through the records reader), whether sqlite plans it as a scan of the table, and the whole command.

The stores are built in bulk: the schema by hostpipe itself (`open_for_writing`), the rows by one
`executemany` in one transaction, a few of them live (queued, running) as on a busy host.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from daemon import cli_env, policy_text
from harness import Bench
from report import Figure

LIVE_EVERY = 40_000
"""One record in this many is running (and one queued): a handful of live jobs among many finished ones."""

_SCHEMA = (
    "import sys; from pathlib import Path; from hostpipe.daemon.schema import open_for_writing; "
    "open_for_writing(Path(sys.argv[1]))[0].close()"
)
_QUERY = (
    "import sys, time; from pathlib import Path; from hostpipe.core.job import JobState; "
    "from hostpipe.daemon.records import Reader; r = Reader(Path(sys.argv[1])); times = []\n"
    "for _ in range(5):\n"
    "    t = time.perf_counter(); n = len(r.jobs(states=[JobState.RUNNING])); times.append(time.perf_counter() - t)\n"
    "print(min(times) * 1000, n)"
)


def build_store(bench: Bench, state_dir: Path, records: int) -> Path:
    """A state folder whose store holds `records` records (and one log file); returns the log's path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    db_path = state_dir / "hostpipe.sqlite3"
    env = cli_env(bench.repo)
    subprocess.run([sys.executable, "-c", _SCHEMA, str(db_path)], env=env, check=True, timeout=60)
    log = state_dir / "logs" / "ns" / "pod" / "1.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("hello from job 1\n" * 20)
    now = time.time() - records

    def rows():  # type: ignore[no-untyped-def]
        for i in range(1, records + 1):
            state = "running" if i % LIVE_EVERY == 7 else "queued" if i % LIVE_EVERY == 9 else "succeeded"
            argv = json.dumps(["docker", "run", "bench/true", f"j{i}"])
            ended = None if state != "succeeded" else now + i + 0.5
            yield (
                i,
                f"ns/pod{i % 50}",
                f"docker run bench/true j{i}",
                argv,
                "docker",
                "bench/true",
                state,
                now + i,
                now + i + 0.1,
                ended,
                0 if ended else None,
                str(log) if i == 1 else None,
            )

    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO jobs (id, pod, line, argv, runtime, image, state, submitted_at, started_at, ended_at,"
            " exit_code, log) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(),
        )
        db.execute("COMMIT")
    finally:
        db.close()
    return log


def _run(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and exit code of one run of `command`."""
    began = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - began, usage.ru_maxrss * 1024 / 1e6, process.returncode


def _median_ms(command: list[str], env: dict[str, str], runs: int) -> tuple[float | None, int]:
    _run(command, env)  # warm the page cache
    results = [_run(command, env) for _ in range(runs)]
    codes = {code for _, _, code in results}
    return statistics.median(wall for wall, _, _ in results) * 1000, max(codes)


def _env(bench: Bench, root: Path, state_dir: Path) -> dict[str, str]:
    policy = root / "policy.toml"
    policy.write_text(policy_text(16))
    extra = {
        "HOSTPIPE_STATE_DIR": str(state_dir),
        "HOSTPIPE_PIPE": str(root / "vk-cmd"),
        "HOSTPIPE_POLICY": str(policy),
        "HOME": str(root),
    }
    return cli_env(bench.repo, extra)


def cli_latency(bench: Bench) -> list[Figure]:
    """Case 8: CLI commands as whole processes on an idle machine; unfiltered `ps --json` memory."""
    s = bench.sizes
    root = bench.root / "8-cli"
    state_dir = root / "state"
    build_store(bench, state_dir, s.json_records)
    env = _env(bench, root, state_dir)
    hp = bench.hostpipe
    commands = {
        "ps --last 20": (["ps", "--last", "20"], 100),
        "status": (["status"], 100),
        "show 1": (["show", "1"], 100),
        "logs 1": (["logs", "1"], 100),
        "check": (["check", "docker run bench/true x"], 150),
    }
    fig = partial(Figure, "8")
    figures = []
    details: dict[str, object] = {}
    for name, (args, target) in commands.items():
        known = subprocess.run([*hp, args[0], "--help"], env=env, capture_output=True, timeout=60, check=False)
        if known.returncode != 0:
            figures.append(fig(f"hostpipe {name}", None, "ms", note="no such command in this CLI: left out"))
            continue
        median, code = _median_ms([*hp, *args], env, s.cli_runs)
        details[name] = {"median_ms": median, "exit": code}
        note = f"median of {s.cli_runs} runs, wall time of the process; exit {code}"
        figures.append(fig(f"hostpipe {name}", median, "ms", ("<", target), note=note))
    small_dir = root / "small-state"
    build_store(bench, small_dir, 1000)
    json_cmd = [*hp, "ps", "--json"]
    big_s, big_mb, big_code = _run(json_cmd, env)
    _, small_mb, _ = _run(json_cmd, _env(bench, root, small_dir))
    growth = big_mb - small_mb
    details["ps --json"] = {"records": s.json_records, "s": big_s, "peak_rss_mb": big_mb, "at_1000_mb": small_mb}
    bench.details["8-cli"] = details
    return [
        *figures,
        fig(f"ps --json at {s.json_records:,} records", big_s, "s", note=f"exit {big_code}, output discarded"),
        fig(
            f"ps --json peak RSS growth, {s.json_records:,} vs 1,000 records",
            growth,
            "MB",
            ("<", 10),
            note=f"{big_mb:.0f} MB against {small_mb:.0f} MB: bounded memory if it streams",
        ),
    ]


def query(bench: Bench) -> list[Figure]:
    """Case 9: `ps --state running` on a large store: the query alone, its plan, and the whole command."""
    n = bench.sizes.query_records
    root = bench.root / "9-query"
    state_dir = root / "state"
    began = time.monotonic()
    build_store(bench, state_dir, n)
    built_s = time.monotonic() - began
    env = _env(bench, root, state_dir)
    done = subprocess.run(
        [sys.executable, "-c", _QUERY, str(state_dir)], env=env, capture_output=True, timeout=300, check=True
    )
    query_ms, found = done.stdout.split()
    db = sqlite3.connect(f"file:{state_dir / 'hostpipe.sqlite3'}?mode=ro", uri=True)
    try:
        plan = " / ".join(
            row[-1]
            for row in db.execute("EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE state IN ('running') ORDER BY id")
        )
    finally:
        db.close()
    scans = "SCAN jobs" in plan and "USING" not in plan.split("SCAN jobs", 1)[1][:40]
    wall, code = _median_ms([*bench.hostpipe, "ps", "--state", "running"], env, bench.sizes.cli_runs)
    bench.details["9-query"] = {"records": n, "built_s": built_s, "plan": plan, "query_ms": float(query_ms)}
    fig = partial(Figure, "9")
    return [
        fig(
            f"ps --state running query, {n:,} records",
            float(query_ms),
            "ms",
            ("<", 5),
            note=f"{int(found)} found; best of 5 inside one process (records reader); plan: {plan}",
        ),
        fig("filtered query scans the table", int(scans), "", ("==", 0), note="EXPLAIN QUERY PLAN"),
        fig(f"hostpipe ps --state running, {n:,} records", wall, "ms", note=f"whole process, median; exit {code}"),
    ]
