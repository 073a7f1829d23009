"""The store: a real writer process, batches committed before anyone acts on them, old files still readable."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
from pathlib import Path

import pytest

from hostpipe.core.job import JobState
from hostpipe.daemon import writer
from hostpipe.daemon.records import Reader
from hostpipe.daemon.schema import SCHEMA_VERSION, StoreCorrupt, StoreError
from hostpipe.daemon.store import NewJob, Store

FIXTURES = Path(__file__).parent / "fixtures"


def _jobs(count: int, prefix: str = "x") -> list[NewJob]:
    return [NewJob(f"docker run {prefix}{i}", JobState.QUEUED, 1.0, argv=["docker"]) for i in range(count)]


async def _open(state_dir: Path) -> Store:
    store = Store(state_dir)
    await store.open()
    return store


def test_batch_is_committed_before_its_future_resolves(tmp_path):
    """Another connection sees every record of a batch as soon as the insert's future gives the ids."""

    async def scenario() -> None:
        store = await _open(tmp_path)
        ids = await store.insert(_jobs(5))
        reader = Reader(tmp_path)
        assert [r.id for r in reader.jobs()] == ids == [1, 2, 3, 4, 5]
        done = store.write(
            "finished", ("cancelled", None, None, "cancelled while queued", 2.0, None, ids[0]), wait=True
        )
        assert done is not None
        await done
        assert reader.get(ids[0]).state is JobState.CANCELLED  # type: ignore[union-attr]
        assert await store.close(timeout=5) == 0

    asyncio.run(scenario())


def test_writes_queued_in_one_round_go_in_one_transaction(tmp_path):
    """Records and the inbox position queued together commit together (one batch number for both)."""

    async def scenario() -> None:
        store = await _open(tmp_path)
        inserted = store.insert(_jobs(3))
        store.write("meta", ("inbox", "1:99"))
        await inserted
        await store.close(timeout=5)

    asyncio.run(scenario())
    reader = Reader(tmp_path)
    assert reader.meta() == {"batch": 1, "inbox": "1:99"}
    assert len(reader.jobs()) == 3


def test_schema_version_is_recorded(tmp_path):
    """A new file carries the schema version, so a later hostpipe knows what it reads."""

    async def scenario() -> None:
        await (await _open(tmp_path)).close(timeout=5)

    asyncio.run(scenario())
    conn = sqlite3.connect(tmp_path / "hostpipe.sqlite3")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_refuses_a_file_from_a_newer_hostpipe(tmp_path):
    """A newer schema is refused as unusable (a configuration error) instead of being misread."""
    conn = sqlite3.connect(tmp_path / "hostpipe.sqlite3")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreCorrupt, match="schema version"):
        asyncio.run(_open(tmp_path))
    with pytest.raises(StoreCorrupt, match="schema version"):
        Reader(tmp_path)


def test_refuses_a_corrupt_file_as_unusable(tmp_path):
    """A file that is not a database is a configuration error, not something to retry."""
    (tmp_path / "hostpipe.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreCorrupt):
        asyncio.run(_open(tmp_path))


def test_checked_in_version_1_file_still_loads(tmp_path):
    """A store written by schema version 1 opens, is migrated, reads and takes new records after its old ones."""
    shutil.copy(FIXTURES / "store-v1.sqlite3", tmp_path / "hostpipe.sqlite3")
    old_reader = Reader(tmp_path)
    assert old_reader.version == 1
    before = old_reader.jobs()
    assert [(r.state, r.pod, r.exit_code) for r in before] == [
        (JobState.SUCCEEDED, "jiriaf/lolcow", 0),
        (JobState.REFUSED, None, None),
    ]

    async def scenario() -> list[int]:
        store = await _open(tmp_path)
        ids = await store.insert(_jobs(1, "y"))
        await store.close(timeout=5)
        return ids

    (new_id,) = asyncio.run(scenario())
    assert new_id > before[-1].id
    after = Reader(tmp_path)
    assert after.version == SCHEMA_VERSION
    assert [r.id for r in after.jobs()][:2] == [r.id for r in before]


def test_reader_never_creates_a_store(tmp_path):
    """ps on a folder with no records says so and leaves the folder untouched."""
    with pytest.raises(StoreError, match="no job records"):
        Reader(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_writer_is_replaced_and_its_batch_is_not_applied_twice(tmp_path):
    """SIGKILL of the writer process loses nothing: a new one takes the same batch and skips it if committed."""

    async def scenario() -> None:
        store = await _open(tmp_path)
        await store.insert(_jobs(2))
        pid = store.writer_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        ids = await asyncio.wait_for(store.insert(_jobs(3, "after")), timeout=20)
        assert ids == [3, 4, 5]
        assert store.writer_pid != pid
        assert await store.close(timeout=5) == 0

    asyncio.run(scenario())
    lines = [r.line for r in Reader(tmp_path).jobs()]
    assert lines == ["docker run x0", "docker run x1", "docker run after0", "docker run after1", "docker run after2"]


def test_batch_numbers_continue_across_store_restarts(tmp_path):
    """A new daemon's first batch is never mistaken for one the file already holds."""

    async def first() -> None:
        store = await _open(tmp_path)
        await store.insert(_jobs(2))
        await store.insert(_jobs(2))
        await store.close(timeout=5)

    async def second() -> None:
        store = await _open(tmp_path)
        done = store.write("finished", ("failed", 1, None, "x", 3.0, None, 1), wait=True)
        assert done is not None
        await done
        await store.close(timeout=5)

    asyncio.run(first())
    asyncio.run(second())
    assert Reader(tmp_path).get(1).state is JobState.FAILED  # type: ignore[union-attr]


def _wal_frames(state_dir: Path) -> int:
    """Frames in the WAL now, read by a passive checkpoint from another connection."""
    conn = sqlite3.connect(state_dir / "hostpipe.sqlite3")
    try:
        _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(frames)
    finally:
        conn.close()


def test_the_writer_checkpoints_in_a_pause_and_starts_the_wal_over_itself(tmp_path):
    """No batch's commit runs a checkpoint: after a pause the writer checkpoints what gathered, and makes the
    write that starts the WAL over (and syncs its header) itself, so the WAL then holds that write alone."""

    async def scenario() -> None:
        store = await _open(tmp_path)
        for start in range(0, 3 * writer.CHECKPOINT_ROWS, 64):
            await store.insert(_jobs(64, prefix=f"b{start}-"))
        await asyncio.sleep(writer.QUIET * 5)
        meta = dict(sqlite3.connect(tmp_path / "hostpipe.sqlite3").execute("SELECT key, value FROM meta"))
        assert "checkpointed_at" in meta
        # Hundreds of rows went in; the WAL holds only what came after the last checkpoint: its own write.
        assert _wal_frames(tmp_path) <= 4
        await store.close(5)

    asyncio.run(scenario())
