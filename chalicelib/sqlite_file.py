"""One durable SQLite file shared by threads: the local adapters' common storage.

WAL (readers never block the writer), a 30 s busy wait between processes, and one
connection per thread kept open: opening one per operation cost about six times the
operation itself (bench/results/micro.json). A connection closes when its thread ends; a
failed transaction is rolled back before reuse.

Durability is chosen per file: `synchronous=FULL` (the default) makes every commit survive
a power cut; `NORMAL` still survives the process being killed (WAL), syncs only at
checkpoints, and suits records that redelivery recreates.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

SYNCHRONOUS = ("FULL", "NORMAL")


class SqliteFile:
    def __init__(self, path: Path, schema: str = "", *, synchronous: str = "FULL") -> None:
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS}")
        self.path = path
        self.synchronous = synchronous
        self._threads = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            if schema:
                db.executescript(schema)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        db = getattr(self._threads, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.execute("PRAGMA busy_timeout=30000")
            self._threads.db = db
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.rollback()
            raise

    def add_column(self, table: str, column: str, declaration: str) -> None:
        """Add a column a newer version needs to a file an older version created."""
        with self.connect() as db:
            present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if column in present:
                return
            try:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):  # another process added it first
                    raise


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc`, or what caused it, is the disk (or its quota) running out."""
    import errno

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(current, sqlite3.Error) and (
            getattr(current, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            or "database or disk is full" in str(current)
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


T = TypeVar("T")


class _Ticket:
    __slots__ = ("done", "durable", "error", "operation", "result")

    def __init__(self, operation: Callable[[sqlite3.Connection], Any], durable: bool) -> None:
        self.operation = operation
        self.durable = durable
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


def _detached(result: Any) -> Any:
    """An operation's result as its caller may hold it in another thread. A cursor belongs
    to the leader's connection: freed in the caller's thread while the leader runs the next
    group on that connection, it made SQLite fail that group with "bad parameter or other
    API misuse" (a webhook answered 503 under a burst). So it is closed here."""
    if isinstance(result, sqlite3.Cursor):
        result.close()
        return None
    return result


class GroupCommit:
    """Many threads' small writes, one transaction and one fsync for all of them.

    `run(operation)` queues the operation and returns only once the transaction holding it
    has committed (or raises its error). The first waiting thread leads: it takes the whole
    queue, runs each operation in its own savepoint (one operation failing leaves the
    others in), commits, and wakes the rest; writes that arrive meanwhile form the next
    group. Under no contention it is one transaction per operation, as before.

    `durable=True` asks for a commit that survives a power cut (synchronous=FULL, whatever
    the file's own setting): a group holding any such operation is committed that way, and
    the fsync also covers the commits before it."""

    def __init__(self, file: SqliteFile) -> None:
        self._file = file
        self._queue: list[_Ticket] = []
        self._leading = False
        self._cond = threading.Condition()

    def run(self, operation: Callable[[sqlite3.Connection], T], *, durable: bool = False) -> T:
        ticket = _Ticket(operation, durable)
        with self._cond:
            self._queue.append(ticket)
            while not ticket.done:
                if self._leading:
                    self._cond.wait()
                    continue
                self._leading = True
                group, self._queue = self._queue, []
                self._cond.release()
                try:
                    self._commit(group)
                finally:
                    self._cond.acquire()
                    self._leading = False
                    self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    def _commit(self, group: list[_Ticket]) -> None:
        durable = any(ticket.durable for ticket in group)
        try:
            with self._file.connect() as db:
                if durable and self._file.synchronous != "FULL":
                    db.execute("PRAGMA synchronous=FULL")
                db.execute("BEGIN IMMEDIATE")
                for ticket in group:
                    db.execute("SAVEPOINT op")
                    try:
                        ticket.result = _detached(ticket.operation(db))
                    except Exception as exc:  # that operation's error, raised in its caller
                        db.execute("ROLLBACK TO op")
                        ticket.error = exc
                    db.execute("RELEASE op")
                db.execute("COMMIT")
                if durable and self._file.synchronous != "FULL":
                    db.execute(f"PRAGMA synchronous={self._file.synchronous}")
        except BaseException as exc:  # the commit failed: nothing of the group is in
            for ticket in group:
                ticket.error = ticket.error or exc
                ticket.result = None
            if not isinstance(exc, Exception):
                raise
        finally:
            for ticket in group:
                ticket.done = True
