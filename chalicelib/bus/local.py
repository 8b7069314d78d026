"""The local bus: a durable event log and delivery ledger in SQLite under MAGPIE_HOME.

`put` returns only after the events are committed with synchronous=FULL, so an event the
webhook acknowledged survives `kill -9`. Routing and delivery are separate steps driven by
the local runtime's dispatcher (local/magpie/dispatcher.py):

  events      every envelope ever published, in order (also the local "archive")
  cursor      how far routing has got; routing re-runs idempotently after a crash
  deliveries  one row per (event, target): pending -> running -> done | dead

A `running` row left behind by a crash is put back to `pending` when a dispatcher starts,
so delivery is at least once, like EventBridge's. `dead` rows are the dead-letter store.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.bus.envelope import make_envelope
from chalicelib.events import OutgoingEvent
from chalicelib.sqlite_file import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    detail_type TEXT NOT NULL,
    source TEXT NOT NULL,
    time TEXT NOT NULL,
    envelope TEXT NOT NULL,
    replay_name TEXT
);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE TABLE IF NOT EXISTS cursor (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    event_seq INTEGER NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    last_error TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (event_seq, target)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, next_at);
"""

Matcher = Callable[[dict[str, Any]], bool]

# Publishers in this process wake the dispatcher instead of letting it wait for its poll.
_listeners: list[threading.Event] = []


@dataclass(frozen=True)
class Delivery:
    event_seq: int
    target: str
    attempts: int
    envelope: dict[str, Any]


@dataclass(frozen=True)
class DeadLetter:
    event_seq: int
    target: str
    attempts: int
    last_error: str
    detail_type: str
    event_id: str


class LocalBusStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = SqliteFile(path, SCHEMA)
        self._connect = self._file.connect

    # --- publishing -------------------------------------------------------------------

    def append(self, envelopes: Sequence[dict[str, Any]], replay_name: str | None = None) -> None:
        """Commit envelopes to the log atomically (all or none)."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT INTO events (id, detail_type, source, time, envelope, replay_name)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        e["id"],
                        e["detail-type"],
                        e["source"],
                        e["time"],
                        json.dumps(e, separators=(",", ":")),
                        replay_name,
                    )
                    for e in envelopes
                ],
            )
            db.execute("COMMIT")
        for listener in list(_listeners):
            listener.set()

    # --- routing and delivery ---------------------------------------------------------

    def route_new(self, targets: Sequence[tuple[str, Matcher]], batch: int = 500) -> int:
        """Create delivery rows for events not routed yet; returns how many events were routed."""
        now = time.time()
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT seq FROM cursor WHERE name = 'router'").fetchone()
            cursor = row[0] if row else 0
            rows = db.execute(
                "SELECT seq, envelope FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (cursor, batch),
            ).fetchall()
            for seq, raw in rows:
                envelope = json.loads(raw)
                for target, matches in targets:
                    if matches(envelope):
                        db.execute(
                            "INSERT OR IGNORE INTO deliveries"
                            " (event_seq, target, status, next_at, updated_at)"
                            " VALUES (?, ?, 'pending', ?, ?)",
                            (seq, target, now, now),
                        )
            if rows:
                db.execute(
                    "INSERT INTO cursor (name, seq) VALUES ('router', ?)"
                    " ON CONFLICT(name) DO UPDATE SET seq = excluded.seq",
                    (rows[-1][0],),
                )
            db.execute("COMMIT")
        return len(rows)

    def recover_running(self) -> int:
        """After a crash, deliveries that were running are due again."""
        with self._connect() as db:
            cur = db.execute(
                "UPDATE deliveries SET status = 'pending', next_at = ? WHERE status = 'running'",
                (time.time(),),
            )
            return cur.rowcount

    def claim_due(self, limit: int, lease_seconds: float = 300.0) -> list[Delivery]:
        now = time.time()
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute(
                "SELECT d.event_seq, d.target, d.attempts, e.envelope FROM deliveries d"
                " JOIN events e ON e.seq = d.event_seq"
                " WHERE d.status = 'pending' AND d.next_at <= ?"
                " ORDER BY d.next_at, d.event_seq LIMIT ?",
                (now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE deliveries SET status = 'running', next_at = ?, updated_at = ?"
                " WHERE event_seq = ? AND target = ?",
                [(now + lease_seconds, now, seq, target) for seq, target, _, _ in rows],
            )
            db.execute("COMMIT")
        return [
            Delivery(seq, target, attempts, json.loads(raw)) for seq, target, attempts, raw in rows
        ]

    def complete(self, delivery: Delivery) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE deliveries SET status = 'done', attempts = attempts + 1, last_error = NULL,"
                " updated_at = ? WHERE event_seq = ? AND target = ?",
                (time.time(), delivery.event_seq, delivery.target),
            )

    def fail(self, delivery: Delivery, error: str, *, max_attempts: int, delay: float) -> bool:
        """Record a failed attempt; returns True when the delivery is now dead-lettered."""
        attempts = delivery.attempts + 1
        dead = attempts >= max_attempts
        with self._connect() as db:
            db.execute(
                "UPDATE deliveries SET status = ?, attempts = ?, next_at = ?, last_error = ?,"
                " updated_at = ? WHERE event_seq = ? AND target = ?",
                (
                    "dead" if dead else "pending",
                    attempts,
                    time.time() + delay,
                    error[:2000],
                    time.time(),
                    delivery.event_seq,
                    delivery.target,
                ),
            )
        return dead

    def next_due_in(self) -> float | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT MIN(next_at) FROM deliveries WHERE status = 'pending'"
            ).fetchone()
        return None if row[0] is None else max(0.0, row[0] - time.time())

    def unrouted(self) -> int:
        with self._connect() as db:
            row = db.execute("SELECT seq FROM cursor WHERE name = 'router'").fetchone()
            cursor = row[0] if row else 0
            return db.execute("SELECT COUNT(*) FROM events WHERE seq > ?", (cursor,)).fetchone()[0]

    def outstanding(self) -> int:
        """Events not routed yet plus deliveries not finished: 0 means the bus is idle."""
        with self._connect() as db:
            busy = db.execute(
                "SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'running')"
            ).fetchone()[0]
        return busy + self.unrouted()

    def last_seq(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]

    def events_since(self, seq: int) -> list[tuple[int, dict[str, Any]]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT seq, envelope FROM events WHERE seq > ? ORDER BY seq", (seq,)
            ).fetchall()
        return [(row_seq, json.loads(raw)) for row_seq, raw in rows]

    # --- dead letters and archive -----------------------------------------------------

    def dead_letters(self) -> list[DeadLetter]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT d.event_seq, d.target, d.attempts, d.last_error, e.detail_type, e.id"
                " FROM deliveries d JOIN events e ON e.seq = d.event_seq"
                " WHERE d.status = 'dead' ORDER BY d.event_seq"
            ).fetchall()
        return [DeadLetter(*row) for row in rows]

    def redrive_dead_letters(self, targets: Iterable[str] | None = None) -> int:
        """Make dead deliveries due again, with a fresh attempt budget."""
        wanted = None if targets is None else set(targets)
        count = 0
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            for letter in db.execute(
                "SELECT event_seq, target FROM deliveries WHERE status = 'dead'"
            ).fetchall():
                if wanted is not None and letter[1] not in wanted:
                    continue
                db.execute(
                    "UPDATE deliveries SET status = 'pending', attempts = 0, next_at = ?"
                    " WHERE event_seq = ? AND target = ?",
                    (time.time(), *letter),
                )
                count += 1
            db.execute("COMMIT")
        for listener in list(_listeners):
            listener.set()
        return count

    def archived(
        self, start: str, end: str, detail_types: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Original (not replayed) envelopes with start <= time < end (ISO-8601 UTC)."""
        query = "SELECT envelope FROM events WHERE time >= ? AND time < ? AND replay_name IS NULL"
        params: list[Any] = [start, end]
        if detail_types:
            query += f" AND detail_type IN ({','.join('?' * len(detail_types))})"
            params += list(detail_types)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY seq", params).fetchall()
        return [json.loads(raw) for (raw,) in rows]


class LocalEventBus:
    """The bus port over a LocalBusStore."""

    def __init__(self, store: LocalBusStore, *, account: str, region: str) -> None:
        self.store = store
        self._account = account
        self._region = region

    def put(self, events: Sequence[OutgoingEvent]) -> None:
        envelopes = [make_envelope(e, account=self._account, region=self._region) for e in events]
        self.store.append(envelopes)


def add_listener(event: threading.Event) -> None:
    _listeners.append(event)


def remove_listener(event: threading.Event) -> None:
    if event in _listeners:
        _listeners.remove(event)
