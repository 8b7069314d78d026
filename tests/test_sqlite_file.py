"""The local adapters' shared SQLite file: durable settings, one connection per thread,
and a failed transaction rolled back before the connection is used again."""

from __future__ import annotations

import threading

import pytest

from chalicelib.sqlite_file import SqliteFile


@pytest.fixture
def file(tmp_path):
    return SqliteFile(tmp_path / "x.sqlite3", "CREATE TABLE t (v INTEGER);")


def test_wal_and_full_sync(file):
    with file.connect() as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_one_connection_per_thread(file):
    with file.connect() as first, file.connect() as again:
        assert first is again
    other = []
    thread = threading.Thread(target=lambda: other.append(file.connect().__enter__()))
    thread.start()
    thread.join()
    assert other[0] is not first


def test_a_failed_transaction_is_rolled_back(file):
    with pytest.raises(RuntimeError), file.connect() as db:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("crash mid-transaction")
    with file.connect() as db:
        assert not db.in_transaction
        assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
