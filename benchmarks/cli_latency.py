"""How fast the CLI answers: the read-only commands, `check`, and filtered queries on a large store.

    python benchmarks/cli_latency.py [--records 1000000] [--runs 15] [--json OUT]

Builds a real store of N records (every 100,000th running, two thirds refused) in a temporary folder, then
runs each command as a fresh process RUNS times and reports the median wall time and the median CPU time
(user+sys of the child, which moves least with the neighbours' load), each against its target (issue 14):
`ps --last 20`, `status`, `show`, `logs` < 100 ms, `check` < 150 ms. In process it times the query behind
`ps --state running` at N records (< 5 ms) and the peak memory of `ps --json --all`.
No daemon runs: `status` answers "no daemon" from the records (exit 120), which is its full read path
except the control socket's round trip.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hostpipe.core.job import JobState  # noqa: E402
from hostpipe.daemon.records import Reader  # noqa: E402
from hostpipe.daemon.schema import DB_NAME, open_for_writing  # noqa: E402

TARGETS_MS = {"ps --last 20": 100, "status": 100, "show": 100, "logs": 100, "check": 150}


def build_store(state_dir: Path, count: int) -> None:
    conn, _ = open_for_writing(state_dir / DB_NAME)
    start = time.time() - count
    log = state_dir / "logs" / "1.log"
    log.parent.mkdir()
    log.write_text("hello\n")
    with conn:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO jobs (id, pod, line, state, rule, reason, exit_code, submitted_at, log) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    i,
                    f"ns/p{i % 50}",
                    f"docker run test/x echo {i}",
                    "running" if i % 100_000 == 0 else ("refused" if i % 3 else "succeeded"),
                    "program" if i % 3 else None,
                    "not an allowed runtime" if i % 3 else None,
                    None if i % 3 else 0,
                    start + i,
                    str(log) if i == 1 else None,
                )
                for i in range(1, count + 1)
            ),
        )
    conn.close()


def run(argv: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Median wall and CPU milliseconds of a fresh `python -m hostpipe ARGV`."""
    return timed([sys.executable, "-m", "hostpipe", *argv], runs, env)


def run_code(code: str, runs: int, env: dict[str, str]) -> tuple[float, float]:
    return timed([sys.executable, "-c", code], runs, env)


def timed(command: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, _, usage = os.wait4(process.pid, 0)
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((usage.ru_utime + usage.ru_stime) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", type=Path, metavar="OUT")
    args = parser.parse_args()
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="hp-cli-") as folder:
        state = Path(folder) / "state"
        state.mkdir()
        build_store(state, args.records)
        policy = Path(folder) / "policy.toml"
        policy.write_text("[runtimes.docker]\n")
        env = {**os.environ, "HOSTPIPE_STATE_DIR": str(state), "HOSTPIPE_POLICY": str(policy)}
        commands = {
            "ps --last 20": ["ps", "--last", "20"],
            "status": ["status"],
            "show": ["show", str(args.records // 2)],
            "logs": ["logs", "1"],
            "check": ["check", "docker run test/x echo hi"],
            "ps --state running": ["ps", "--state", "running"],
        }
        # Same-round baselines: the interpreter alone, and with click (what every command needs), so that a
        # figure taken on a loaded machine can be read as a ratio.
        for name, code in (("python -c pass", "pass"), ("python -c 'import click'", "import click")):
            wall, cpu = run_code(code, args.runs, env)
            figures[name] = {"wall_ms": wall, "cpu_ms": cpu, "target_ms": 0.0}
        for name, argv in commands.items():
            wall, cpu = run(argv, args.runs, env)
            figures[name] = {"wall_ms": wall, "cpu_ms": cpu, "target_ms": TARGETS_MS.get(name, 100)}
        reader = Reader(state)
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            reader.jobs(states=[JobState.RUNNING])
            times.append((time.perf_counter() - started) * 1000)
        reader.close()
        figures["query: state running"] = {"wall_ms": statistics.median(times), "cpu_ms": 0.0, "target_ms": 5}
        code = (
            "import resource, runpy, sys; sys.argv = ['hostpipe', 'ps', '--json', '--all'];\n"
            "try:\n    runpy.run_module('hostpipe', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
        )
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", code],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            check=True,
        )
        figures["ps --json --all"] = {
            "wall_ms": (time.perf_counter() - started) * 1000,
            "cpu_ms": 0.0,
            "target_ms": 0.0,
            "peak_rss_mib": int(result.stderr.split()[-1]) / 1024,
        }
    print(f"{args.records:,} records, median of {args.runs} runs; load average {os.getloadavg()[0]:.2f}")
    print(f"{'figure':<24} {'wall ms':>9} {'cpu ms':>8} {'target':>8}")
    for name, figure in figures.items():
        extra = f"  peak {figure['peak_rss_mib']:.0f} MiB" if "peak_rss_mib" in figure else ""
        target = f"< {figure['target_ms']:g}" if figure["target_ms"] else ("bounded" if extra else "-")
        print(f"{name:<24} {figure['wall_ms']:>9.1f} {figure['cpu_ms']:>8.1f} {target:>8}{extra}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
