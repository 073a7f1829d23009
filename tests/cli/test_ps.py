"""`hostpipe ps`: the newest records by default, time and width limits, and queries that use an index."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from hostpipe.core.job import JobState
from hostpipe.daemon.records import Reader
from hostpipe.daemon.schema import DB_NAME, open_for_writing
from tests.cli.terminal import on_terminal
from tests.conftest import Daemon, hostpipe

INSERT = "INSERT INTO jobs (id, pod, line, state, rule, reason, submitted_at, lines) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def make_store(state_dir: Path, count: int, *, start: float, step: float = 1.0) -> None:
    """A real store file of `count` records, one every `step` seconds from `start`; every 1000th is running."""
    state_dir.mkdir(parents=True, exist_ok=True)
    conn, _ = open_for_writing(state_dir / DB_NAME)
    with conn:
        conn.execute("BEGIN")
        conn.executemany(
            INSERT,
            (
                (
                    i,
                    f"ns/p{i % 7}",
                    f"docker run test/x echo {i}",
                    "running" if i % 1000 == 0 else "refused",
                    "program",
                    "why " * 40,
                    start + i * step,
                    3 if i == 5 else None,
                )
                for i in range(1, count + 1)
            ),
        )
    conn.close()


def ps(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return hostpipe("ps", "--state-dir", str(state_dir), *args, check=False)


def test_ps_shows_the_newest_twenty_unless_asked_for_all(tmp_path):
    """Without options the newest 20 records, oldest first; --last N and --all widen it."""
    make_store(tmp_path, 50, start=time.time() - 100)
    ids = [r["id"] for r in json.loads(ps(tmp_path, "--json").stdout)]
    assert ids == list(range(31, 51))
    assert len(json.loads(ps(tmp_path, "--json", "--all").stdout)) == 50
    assert [r["id"] for r in json.loads(ps(tmp_path, "--json", "--last", "3").stdout)] == [48, 49, 50]
    table = ps(tmp_path).stdout.splitlines()
    assert table[0].split() == ["ID", "POD", "STATE", "EXIT", "ELAPSED", "SUBMITTED", "COMMAND", "/", "REASON"]
    assert len(table) == 21
    assert ps(tmp_path, "--last", "2", "--all").returncode == 2


def test_since_takes_a_duration_or_a_time(tmp_path):
    """--since 30s keeps records of the last 30 seconds; an ISO time works the same; nonsense is a usage error."""
    now = int(time.time())
    make_store(tmp_path, 100, start=now - 100)  # record i submitted at now - 100 + i
    recent = [r["id"] for r in json.loads(ps(tmp_path, "--json", "--all", "--since", "30s").stdout)]
    assert recent[-1] == 100 and 25 <= len(recent) <= 30  # 30 seconds back from a moment a little after `now`
    moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now - 10))
    assert [r["id"] for r in json.loads(ps(tmp_path, "--json", "--since", moment).stdout)] == list(range(90, 101))
    bad = ps(tmp_path, "--since", "yesterday-ish")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_table_fits_the_terminal_unless_no_trunc(tmp_path):
    """On a terminal of 200 columns no line is longer; --no-trunc and a pipe show the full reason."""
    make_store(tmp_path, 5, start=time.time() - 10)
    code, seen = on_terminal(["ps", "--state-dir", str(tmp_path)], {"PATH": "/usr/bin:/bin"} | _pythonpath())
    lines = seen.decode().splitlines()
    assert code == 0 and max(len(line) for line in lines) <= 200 and lines[-1].endswith("…")
    assert "[3 lines] program:" in seen.decode()
    code, seen = on_terminal(
        ["ps", "--no-trunc", "--state-dir", str(tmp_path)], {"PATH": "/usr/bin:/bin"} | _pythonpath()
    )
    assert max(len(line) for line in seen.decode().splitlines()) > 200
    piped = ps(tmp_path).stdout
    assert ("why " * 40).strip() in piped


def _pythonpath() -> dict[str, str]:
    return {"PYTHONPATH": str(Path(__file__).parent.parent.parent)}


def test_every_filter_uses_an_index(tmp_path):
    """EXPLAIN QUERY PLAN of each filter ps offers names an index or the primary key, never a bare table scan."""
    make_store(tmp_path, 10, start=time.time())
    reader = Reader(tmp_path)
    queries: list[str] = []
    reader._conn.set_trace_callback(queries.append)
    cases = [
        {"states": [JobState.RUNNING]},
        {"states": [JobState.RUNNING, JobState.QUEUED], "limit": 20},
        {"pod": "ns/p1", "limit": 20},
        {"client_id": "x"},
        {"since": time.time() - 5, "limit": 20},
        {"limit": 20},
    ]
    for case in cases:
        queries.clear()
        reader.jobs(**case)  # type: ignore[arg-type]
        plan = _plans(reader, queries)
        if "limit" in case and len(case) == 1:
            assert "SCAN jobs" in plan  # the newest 20 come from the primary key's end
            continue
        assert "SCAN jobs" not in plan, (case, plan)
    reader.close()


def _plans(reader: Reader, queries: list[str]) -> str:
    out = []
    for query in queries:
        if not query.lstrip().upper().startswith("SELECT"):
            continue
        # The trace shows each statement with its values filled in, so it can be explained as it is.
        out.extend(" ".join(str(c) for c in row) for row in reader._conn.execute("EXPLAIN QUERY PLAN " + query))
    return " | ".join(out)


def test_json_streams_in_bounded_memory(tmp_path):
    """ps --json --all of 200,000 records stays under 80 MB of peak memory (the list would take several hundred)."""
    make_store(tmp_path, 200_000, start=time.time() - 300_000)
    code = (
        "import resource, runpy, sys; sys.argv = ['hostpipe', 'ps', '--json', '--all', '--state-dir', sys.argv[1]];\n"
        "try:\n    runpy.run_module('hostpipe', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True, timeout=300
    )
    assert len(json.loads(result.stdout)) == 200_000
    peak_kib = int(result.stderr.split()[-1])
    assert peak_kib < 80 * 1024, peak_kib


def test_ps_table_names_the_duration_elapsed(make_daemon):
    """The duration column is ELAPSED; the `runtime` JSON key stays the runtime's name."""
    daemon: Daemon = make_daemon()
    daemon.write("docker run test/x true\n")
    (record,) = daemon.wait_records(1)
    assert record["runtime"] == "docker"
    header = daemon.run("ps", check=True).stdout.splitlines()[0]
    assert "ELAPSED" in header and "RUNTIME" not in header
