"""How long the pure core takes to decide one line, the CPU every line costs the daemon before it is recorded.

The daemon records refused lines as fast as it can decide them, so `evaluate` (grammar, runtime grammar and
policy) sets the ceiling on how many lines per second one core can take. This times it per line, under the
built-in policy and a host whose home is /tmp, for lines the daemon sees most: plain refusals, refusals by an
argument rule, the allowed lines of the README's Table 3 (tests/data/pipe-lines.txt), and a few longer lines.
Times are CPU seconds of this process, the best round of several, so that other work on the machine counts
as little as it can.

    python benchmarks/core_speed.py [--rounds N] [--number N]
"""

from __future__ import annotations

import argparse
import os
import time
import timeit
from dataclasses import dataclass

from hostpipe.core.evaluate import evaluate
from hostpipe.core.grammar import Expansions
from hostpipe.core.policy import LoadedPolicy, Refused, builtin_policy

LINES: tuple[tuple[str, str], ...] = (
    ("refused", "ls -l ."),
    ("refused", "docker run --privileged bench/x"),
    ("refused", "docker run ubuntu ls > out"),
    ("refused", "docker run --network=host -v /etc:/etc ubuntu"),
    ("refused", "HOSTPIPE_POD=ns/pod docker run ubuntu ls && echo done"),
    ("allowed", "docker run bench/true 1"),
    ("allowed", "docker run godlovedc/lolcow:latest"),
    ("allowed", "apptainer run docker://sylabsio/lolcow:latest"),
    ("allowed", "shifter --image=godlovedc/lolcow:latest --entrypoint"),
    ("allowed", "podman run --name ersap -d --rm -e ERSAP_HOME=/ersap --entrypoint=/ersap/run.sh gurjyan/ersap:v0.4"),
    ("allowed", "HOSTPIPE_POD=ns/pod HOSTPIPE_ID=job-1 docker run -d --rm -e A=b ubuntu sh -c 'echo $HOME'"),
)


@dataclass(frozen=True)
class _Host:
    home: str

    def realpath(self, path: str) -> str:
        return os.path.realpath(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="timing rounds per line; the best is shown")
    parser.add_argument("--number", type=int, default=300, help="evaluations of one line per round")
    options = parser.parse_args()
    policy = builtin_policy()
    loaded = LoadedPolicy(policy, executables={name: "/usr/bin/" + name for name in policy.runtimes}, source="x")
    host = _Host(home="/tmp")
    expansions = Expansions(home="/tmp", user="bench")
    environ = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "USER": "bench", "LANG": "C.UTF-8"}
    outcomes: list[str] = []
    timers: list[timeit.Timer] = []
    for expected, line in LINES:
        data = line.encode()
        decision = evaluate(data, expansions, loaded, host, environ).decision
        outcome = f"refused ({decision.rule})" if isinstance(decision, Refused) else "allowed"
        if not outcome.startswith(expected):
            raise SystemExit(f"{line!r}: expected {expected}, got {outcome}")
        outcomes.append(outcome)
        timers.append(
            timeit.Timer(lambda data=data: evaluate(data, expansions, loaded, host, environ), timer=time.process_time)
        )
    best = [float("inf")] * len(LINES)
    # Rounds go over every line in turn, so that a busy spell on the machine spoils one round of each line
    # rather than every round of one line; the best round is the cost of the line itself.
    for _ in range(options.rounds):
        for at, timer in enumerate(timers):
            best[at] = min(best[at], timer.timeit(options.number) / options.number)
    print(f"{'us/line':>8}  {'outcome':<22} line  (CPU time, best of {options.rounds} rounds of {options.number})")
    for (_, line), outcome, seconds in zip(LINES, outcomes, best, strict=True):
        print(f"{seconds * 1e6:8.1f}  {outcome:<22} {line}")


if __name__ == "__main__":
    main()
