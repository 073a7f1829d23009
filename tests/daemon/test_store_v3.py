"""Schema version 3: summaries of refused lines, and the version 2 files written before it still loading."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from hostpipe.core.job import JobState
from hostpipe.daemon.records import Reader
from hostpipe.daemon.schema import SCHEMA_VERSION, open_for_writing
from hostpipe.daemon.store import NewJob, Store
from hostpipe.daemon.writer import SQL

FIXTURES = Path(__file__).parent / "fixtures"


def test_checked_in_version_2_file_still_loads(tmp_path):
    """A store written by schema version 2 reads as it is, then migrates and takes summaries after its records."""
    shutil.copy(FIXTURES / "store-v2.sqlite3", tmp_path / "hostpipe.sqlite3")
    old = Reader(tmp_path)
    assert old.version == 2
    before = old.jobs()
    assert [(r.id, r.state, r.pod, r.log_dropped, r.container_id, r.lines) for r in before] == [
        (1, JobState.SUCCEEDED, "jiriaf/lolcow", 1048576, None, None),
        (2, JobState.REFUSED, None, None, None, None),
        (3, JobState.CANCELLED, "jiriaf/svc", None, "0123456789abcdef" * 4, None),
    ]
    assert old.meta() == {"batch": 2, "inbox": "3:4096", "store_id": "00112233aabbccdd"}
    old.close()

    async def scenario() -> list[int]:
        store = Store(tmp_path)
        hello = await store.open()
        assert not hello.fresh and hello.meta["inbox"] == "3:4096"
        ids = await store.insert([NewJob("ls", JobState.REFUSED, 2.0, rule="rate-limit", summary="k1")])
        done = store.write("summary", (7, "ls 7", "seven lines", 3.0, "k1"), wait=True)
        assert done is not None
        await done
        await store.close(timeout=5)
        return ids

    (new_id,) = asyncio.run(scenario())
    after = Reader(tmp_path)
    assert after.version == SCHEMA_VERSION
    records = after.jobs()
    assert [r.id for r in records] == [1, 2, 3, new_id] and new_id == 4
    assert [(r.state, r.log_dropped) for r in records[:3]] == [(r.state, r.log_dropped) for r in before]
    summary = records[-1]
    assert (summary.lines, summary.line, summary.last_line, summary.reason, summary.ended_at) == (
        7,
        "ls",
        "ls 7",
        "seven lines",
        3.0,
    )


def test_summary_updates_and_purges_use_indexes(tmp_path):
    """Bringing a summary up to date and purging by id never scan the table, however many records it holds."""
    conn, _ = open_for_writing(tmp_path / "hostpipe.sqlite3")
    plans = {
        name: " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + SQL[name], args))
        for name, args in (("summary", (1, "x", "y", 1.0, "k")), ("purge", (1, 1.0)))
    }
    conn.close()
    assert "USING INDEX jobs_by_summary" in plans["summary"]
    assert "INTEGER PRIMARY KEY" in plans["purge"]
    assert all("SCAN" not in plan for plan in plans.values())


def test_purge_never_removes_a_live_or_recent_record(tmp_path):
    """The writer checks state and age again as it removes: queued, running and new records stay."""
    conn, _ = open_for_writing(tmp_path / "hostpipe.sqlite3")
    rows = [
        (1, "succeeded", 10.0, 20.0),
        (2, "running", 10.0, None),
        (3, "queued", 10.0, None),
        (4, "failed", 10.0, 200.0),
        (5, "refused", 10.0, None),
    ]
    conn.executemany(
        "INSERT INTO jobs (id, line, state, submitted_at, ended_at) VALUES (?, 'x', ?, ?, ?)",
        rows,
    )
    conn.executemany(SQL["purge"], [(job_id, 100.0) for job_id, *_ in rows])
    left = [row[0] for row in conn.execute("SELECT id FROM jobs ORDER BY id")]
    conn.close()
    assert left == [2, 3, 4]
