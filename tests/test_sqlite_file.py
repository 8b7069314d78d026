"""The local adapters' shared SQLite file: durable settings, one connection per thread,
and a failed transaction rolled back before the connection is used again."""

from __future__ import annotations

import errno
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.sqlite_file import GroupCommit, SqliteFile, is_disk_full


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


def test_group_commit_shares_commits_and_returns_only_once_committed(file, monkeypatch):
    group = GroupCommit(file)
    commits = []
    original = group._commit

    def counted(tickets):
        commits.append(len(tickets))
        time.sleep(0.01)  # a slow fsync, so that writers pile up behind it
        original(tickets)

    monkeypatch.setattr(group, "_commit", counted)
    barrier = threading.Barrier(16)
    seen_after_return = []

    def write(value: int) -> None:
        barrier.wait()
        group.run(lambda db: db.execute("INSERT INTO t VALUES (?)", (value,)))
        # A connection of its own (another "process") already sees the row: committed.
        reader = sqlite3.connect(file.path)
        seen_after_return.append(
            reader.execute("SELECT COUNT(*) FROM t WHERE v = ?", (value,)).fetchone()[0]
        )
        reader.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen_after_return == [1] * 16
    assert sum(commits) == 16
    assert len(commits) < 16  # several writes shared a commit


def test_one_failing_operation_leaves_the_rest_of_its_group_in(file):
    group = GroupCommit(file)
    with pytest.raises(sqlite3.OperationalError):
        group.run(lambda db: db.execute("INSERT INTO missing VALUES (1)"))
    group.run(lambda db: db.execute("INSERT INTO t VALUES (2)"))
    with file.connect() as db:
        assert db.execute("SELECT v FROM t").fetchall() == [(2,)]


def test_a_full_disk_is_recognised_through_its_causes():
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.Error as exc:
            raise RuntimeError("publish failed") from exc
    except RuntimeError as wrapped:
        assert is_disk_full(wrapped)
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))


def test_a_durable_operation_makes_its_group_commit_with_full_sync(tmp_path):
    file = SqliteFile(tmp_path / "x.sqlite3", "CREATE TABLE t (v INTEGER);", synchronous="NORMAL")
    group = GroupCommit(file)
    statements = []
    with file.connect() as db:
        db.set_trace_callback(statements.append)
    group.run(lambda db: db.execute("INSERT INTO t VALUES (1)"))
    group.run(lambda db: db.execute("INSERT INTO t VALUES (2)"), durable=True)
    with file.connect() as db:
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # back to NORMAL
    pragmas = [s for s in statements if s.startswith("PRAGMA synchronous=")]
    assert pragmas == ["PRAGMA synchronous=FULL", "PRAGMA synchronous=NORMAL"]
    assert statements.index("PRAGMA synchronous=FULL") > statements.index("COMMIT")


def test_a_cursor_never_leaves_the_thread_that_ran_the_group(file):
    group = GroupCommit(file)
    assert group.run(lambda db: db.execute("INSERT INTO t (v) VALUES ('x')")) is None
    assert group.run(lambda db: db.execute("SELECT COUNT(*) FROM t").fetchone()) == (1,)


def test_a_burst_of_appends_from_64_threads_all_commit(tmp_path):
    # Before cursors were closed by the leader, 24-28 of these 6,400 appends failed with
    # "bad parameter or other API misuse" (the cursor freed in its caller's thread while the
    # leader ran the next group on the same connection): 503s under a burst of deliveries.
    from chalicelib.bus.local import LocalBusStore

    store = LocalBusStore(tmp_path / "bus.db")

    def envelope(n: int) -> dict:
        detail = {"text": "x" * 500}
        return {"id": str(n), "detail-type": "T", "source": "s", "time": "t", "detail": detail}

    def appends(thread: int) -> None:
        for i in range(100):
            store.append([envelope(thread * 1000 + 2 * i), envelope(thread * 1000 + 2 * i + 1)])

    with ThreadPoolExecutor(64) as pool:
        list(pool.map(appends, range(64)))
    assert store.last_seq() == 64 * 100 * 2
