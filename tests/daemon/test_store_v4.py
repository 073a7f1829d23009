"""Schema version 4: reply keys, and the version 3 files written before it still loading."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

from hostpipe.core.job import JobState
from hostpipe.daemon.records import Reader
from hostpipe.daemon.schema import SCHEMA_VERSION
from hostpipe.daemon.store import NewJob, Store

FIXTURES = Path(__file__).parent / "fixtures"
NONCE = "ab" * 16
DIGEST = "cd" * 32


def test_checked_in_version_3_file_still_loads_and_migrates(tmp_path: Path) -> None:
    """The version 3 fixture reads as it is (no reply columns yet), then migrates to the current version, keeps
    its records, and takes a record with a reply nonce that a lookup by nonce finds."""
    shutil.copy(FIXTURES / "store-v3.sqlite3", tmp_path / "hostpipe.sqlite3")
    old = Reader(tmp_path)
    assert old.version == 3
    before = old.jobs()
    assert [(r.id, r.state, r.pod, r.container_id, r.lines) for r in before] == [
        (1, JobState.SUCCEEDED, "jiriaf/lolcow", None, None),
        (2, JobState.REFUSED, None, None, None),
        (3, JobState.CANCELLED, "jiriaf/svc", "0123456789abcdef" * 4, None),
        (4, JobState.REFUSED, None, None, 5),
    ]
    assert all(r.reply_nonce is None and r.token_hash is None for r in before)
    assert old.by_reply(NONCE) is None
    assert old.meta()["store_id"] == "00112233aabbccdd"
    old.close()

    async def scenario() -> list[int]:
        store = Store(tmp_path)
        await store.open()
        record = NewJob("docker run x", JobState.QUEUED, 5.0, argv=["docker"], reply_nonce=NONCE, token_hash=DIGEST)
        ids = await store.insert([record])
        await store.close(timeout=5)
        return ids

    (new_id,) = asyncio.run(scenario())
    after = Reader(tmp_path)
    assert after.version == SCHEMA_VERSION == 4
    assert [r.id for r in after.jobs()] == [1, 2, 3, 4, new_id] and new_id == 5
    found = after.by_reply(NONCE)
    assert found is not None
    assert (found.id, found.reply_nonce, found.token_hash) == (new_id, NONCE, DIGEST)
    with sqlite3.connect(tmp_path / "hostpipe.sqlite3") as conn:
        plan = " ".join(
            str(row) for row in conn.execute("EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE reply_nonce = ?", (NONCE,))
        )
    assert "jobs_by_reply" in plan
