"""The sqlite store: batches committed whole, schema versioned, old files still readable."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from hostpipe.core.job import JobState, Outcome
from hostpipe.daemon.store import SCHEMA_VERSION, NewJob, Reader, Store, StoreError

FIXTURES = Path(__file__).parent / "fixtures"


def test_batch_is_committed_before_insert_returns(tmp_path):
    """Another connection sees every record of a batch as soon as insert() returns."""
    store = Store(tmp_path)
    ids = store.insert([NewJob(f"docker run x{i}", JobState.QUEUED, 1.0, argv=["docker"]) for i in range(5)])
    reader = Reader(tmp_path)
    assert [r.id for r in reader.jobs()] == ids
    store.finished(ids[0], Outcome(JobState.CANCELLED, reason="cancelled while queued"), ended_at=2.0)
    assert reader.get(ids[0]).state is JobState.CANCELLED  # type: ignore[union-attr]


def test_schema_version_is_recorded(tmp_path):
    """A new file carries the schema version, so a later hostpipe knows what it reads."""
    Store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "hostpipe.sqlite3")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_refuses_a_file_from_a_newer_hostpipe(tmp_path):
    """A newer schema is refused with a clear error instead of being misread."""
    Store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "hostpipe.sqlite3")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="schema version"):
        Store(tmp_path)
    with pytest.raises(StoreError, match="schema version"):
        Reader(tmp_path)


def test_checked_in_version_1_file_still_loads(tmp_path):
    """A store written by schema version 1 opens, reads and takes new records."""
    shutil.copy(FIXTURES / "store-v1.sqlite3", tmp_path / "hostpipe.sqlite3")
    store = Store(tmp_path)
    old = Reader(tmp_path).jobs()
    assert [(r.state, r.pod, r.exit_code) for r in old] == [
        (JobState.SUCCEEDED, "jiriaf/lolcow", 0),
        (JobState.REFUSED, None, None),
    ]
    (new_id,) = store.insert([NewJob("docker run y", JobState.QUEUED, 3.0)])
    assert new_id > old[-1].id


def test_reader_never_creates_a_store(tmp_path):
    """ps on a folder with no records says so and leaves the folder untouched."""
    with pytest.raises(StoreError, match="no job records"):
        Reader(tmp_path)
    assert list(tmp_path.iterdir()) == []
