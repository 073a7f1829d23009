"""Measure hostpipe against the old shell loop and `xargs -P`, side by side, in one run.

    python benchmarks/run.py [--quick] [--json OUT] [--cases 1,4] [--keep]

Each reader gets a temporary FIFO and a stand-in `docker` that stamps when each job starts and ends, and pods
are played by forked writers that open the pipe, write one line and close it. The table printed at the end
gives each figure, its target and whether it was met; --json writes the same figures with per-case details.

Cases: 1 makespan and lost/duplicated lines, 2 submit latency while jobs run, 3 line-to-start latency,
4 spawn rate against xargs and tsp, 5 refusal rate, 6 memory and start-up, 7 the event loop while the disk is
busy, 8 CLI latency and `ps --json` memory, 9 `ps --state running` on a large store; then a shutdown check
over every daemon.

The exit status is 0 whenever the harness could measure, even if targets were missed (the table says so);
it is non-zero only when the harness itself failed. Every process it starts is killed and every temporary
folder removed on the way out (--keep leaves the folders for inspection).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import cli
import footprint
import latency
import pressure
import processes
import throughput
from daemon import HarnessError, hostpipe_command
from harness import QUICK, Bench, Sizes
from report import Figure, table, write_json

CASES: dict[str, Callable[[Bench], list[Figure]]] = {
    "1": throughput.makespan,
    "2": latency.submit_under_load,
    "3": latency.line_to_start,
    "4": throughput.spawn_rate,
    "5": throughput.refusal_rate,
    "6": footprint.footprint,
    "7": pressure.disk_pressure,
    "8": cli.cli_latency,
    "9": cli.query,
}
REPO = Path(__file__).resolve().parent.parent


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes; under a minute on two cores")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write figures and details as JSON")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case numbers (default all)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (pipes, logs)")
    args = parser.parse_args(argv)
    args.cases = [case.strip() for case in args.cases.split(",") if case.strip()]
    if unknown := [case for case in args.cases if case not in CASES]:
        parser.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    return args


def _preflight() -> None:
    if not Path("/proc/self/status").exists():
        raise HarnessError("needs Linux /proc to read process memory")
    for tool in ("bash", "xargs", "sleep", "dd"):
        if shutil.which(tool) is None:
            raise HarnessError(f"needs `{tool}` on PATH")


def _meta(
    args: argparse.Namespace, sizes: Sizes, command: list[str], seconds: float, load: tuple[float, float, float]
) -> dict[str, object]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "cases": args.cases,
        "sizes": dataclasses.asdict(sizes),
        "hostpipe_command": command,
        "cpus": os.cpu_count(),
        "load_average_at_start": load,
        "python": sys.version.split()[0],
        "kernel": platform.release(),
        "seconds": round(seconds, 1),
    }


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    # Unwind through the finally blocks that stop every reader; a second SIGTERM must not cut that short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(143)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    sizes = QUICK if args.quick else Sizes()
    root = Path(tempfile.mkdtemp(prefix="hostpipe-bench-"))
    began = time.monotonic()
    try:
        _preflight()
        bench = Bench(REPO, root, sizes, hostpipe_command(REPO))
        load = os.getloadavg()
        figures: list[Figure] = []
        for case in args.cases:
            print(CASES[case].__doc__, file=sys.stderr, flush=True)
            figures += CASES[case](bench)
        figures += footprint.shutdown(bench)
    except Exception as error:  # a failure of the harness, not a missed target: report it whole
        print(f"benchmark harness failed: {error}", file=sys.stderr)
        traceback.print_exc()
        return 2
    finally:
        processes.stop_all()
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(table(figures))
    print(
        f"\n{'quick' if args.quick else 'full'} run, {time.monotonic() - began:.0f} s; "
        f"{os.cpu_count()} CPUs, load average at start {load[0]:.2f}"
    )
    if args.json:
        write_json(
            args.json,
            figures,
            bench.details | {"stops": bench.stops},
            _meta(args, sizes, bench.hostpipe, time.monotonic() - began, load),
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
