"""One durable SQLite file shared by threads: the local adapters' common storage.

WAL (readers never block the writer), synchronous=FULL (a commit survives kill -9), a 30 s
busy wait between processes, and one connection per thread kept open: opening one per
operation cost about six times the operation itself (bench/results/micro.json). A
connection closes when its thread ends; a failed transaction is rolled back before reuse.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SqliteFile:
    def __init__(self, path: Path, schema: str = "") -> None:
        self.path = path
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
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            self._threads.db = db
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.rollback()
            raise
