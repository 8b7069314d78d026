"""The local bus: a durable event log and delivery ledger in SQLite under MAGPIE_HOME.

`put` returns only after the events are committed with synchronous=FULL, so an event the
webhook acknowledged survives `kill -9` and a power cut. Concurrent writers share commits
(group commit, `chalicelib.sqlite_file.GroupCommit`): each still returns only after its own
rows are committed, but many of them pay for one fsync. The delivery bookkeeping (claims,
completions, retries) is committed with synchronous=NORMAL: it survives `kill -9` (WAL), and
what a power cut could undo of it is redone by redelivery, which targets absorb.

Routing and delivery are separate steps driven by the local runtime's dispatcher
(local/magpie/dispatcher.py):

  events      every envelope ever published, in order (also the local "archive")
  cursor      how far routing has got; routing re-runs idempotently after a crash
  deliveries  one row per (event, target): pending -> running -> done | dead

An attempt is counted when it is claimed, in the same commit that marks the row `running`
with its owner (the claiming process, `chalicelib.process_identity`), so an attempt that
dies with its process still counts. A `running` row whose owner is gone is reclaimed by any
dispatcher on the file (at start and periodically): due again, one more crash on record,
or `dead` with that reason once its attempts are spent, so a message that crashes the
process every time is parked instead of crashing it forever. Rows of a live owner are
left alone. Delivery is at least once, like EventBridge's. `dead` rows are the dead-letter
store.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.bus import PublishError
from chalicelib.bus.envelope import make_envelope
from chalicelib.events import OutgoingEvent
from chalicelib.process_identity import current_owner, is_alive
from chalicelib.sqlite_file import GroupCommit, SqliteFile

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
# Columns added after the first release: (name, declaration), added to older files too.
ADDED_COLUMNS = (
    ("owner", "TEXT"),  # the process running it, while `running`
    ("crashes", "INTEGER NOT NULL DEFAULT 0"),  # attempts that died with their process
    ("priority", "INTEGER NOT NULL DEFAULT 5"),  # lower first: work closest to done
)

Matcher = Callable[[dict[str, Any]], bool]
Priority = Callable[[str, dict[str, Any]], int]  # (target, envelope) -> lower runs first

# Publishers in this process wake the dispatcher instead of letting it wait for its poll.
_listeners: list[threading.Event] = []


@dataclass(frozen=True)
class Delivery:
    event_seq: int
    target: str
    attempts: int  # attempts made before this one
    envelope: dict[str, Any]
    crashes: int = 0  # earlier attempts that died with their process


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
        self._file = SqliteFile(path, SCHEMA, synchronous="NORMAL")
        for column, declaration in ADDED_COLUMNS:
            self._file.add_column("deliveries", column, declaration)
        self._connect = self._file.connect
        self._group = GroupCommit(self._file)

    # --- publishing -------------------------------------------------------------------

    def append(self, envelopes: Sequence[dict[str, Any]], replay_name: str | None = None) -> None:
        """Commit envelopes to the log atomically (all or none), sharing the commit with
        concurrent appends; returns once they are durable."""
        rows = [
            (
                e["id"],
                e["detail-type"],
                e["source"],
                e["time"],
                json.dumps(e, separators=(",", ":")),
                replay_name,
            )
            for e in envelopes
        ]
        self._group.run(
            lambda db: db.executemany(
                "INSERT INTO events (id, detail_type, source, time, envelope, replay_name)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            ),
            durable=True,
        )
        _wake_listeners()

    # --- routing and delivery ---------------------------------------------------------

    def route_new(
        self,
        targets: Sequence[tuple[str, Matcher]],
        batch: int = 500,
        *,
        priority: Priority | None = None,
    ) -> int:
        """Create delivery rows for events not routed yet; returns how many events were routed.

        The events are read and matched with no lock held, and the rows written in one group
        commit: another router (a `magpie replay` beside `magpie serve`) routing the same
        events only meets rows that already exist."""
        now = time.time()
        with self._connect() as db:
            row = db.execute("SELECT seq FROM cursor WHERE name = 'router'").fetchone()
            cursor = row[0] if row else 0
            rows = db.execute(
                "SELECT seq, envelope FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (cursor, batch),
            ).fetchall()
        if not rows:
            return 0
        deliveries = []
        for seq, raw in rows:
            envelope = json.loads(raw)
            for target, matches in targets:
                if matches(envelope):
                    rank = priority(target, envelope) if priority else 5
                    deliveries.append((seq, target, now, now, rank))

        def write(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT OR IGNORE INTO deliveries"
                " (event_seq, target, status, next_at, updated_at, priority)"
                " VALUES (?, ?, 'pending', ?, ?, ?)",
                deliveries,
            )
            db.execute(
                "INSERT INTO cursor (name, seq) VALUES ('router', ?)"
                " ON CONFLICT(name) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                (rows[-1][0],),
            )

        self._group.run(write)
        return len(rows)

    def reclaim_orphans(self, max_attempts: int) -> tuple[int, int]:
        """Running deliveries whose process is gone: due again, or dead once their attempts
        are spent. Returns (made due, parked)."""
        with self._connect() as db:
            owners = [
                row[0]
                for row in db.execute(
                    "SELECT DISTINCT owner FROM deliveries WHERE status = 'running'"
                ).fetchall()
            ]
        gone = [owner for owner in owners if not is_alive(owner)]
        if not gone:
            return 0, 0
        now = time.time()

        def reclaim(db: sqlite3.Connection) -> tuple[int, int]:
            due = parked = 0
            for owner in gone:
                rows = db.execute(
                    "SELECT event_seq, target, attempts, crashes FROM deliveries"
                    " WHERE status = 'running' AND owner IS ?",  # IS: NULL matches NULL
                    (owner,),
                ).fetchall()
                for seq, target, attempts, crashes in rows:
                    dead = attempts >= max_attempts
                    error = (
                        f"the process running it died ({crashes + 1} of {attempts} attempts"
                        " ended that way)"
                    )
                    db.execute(
                        "UPDATE deliveries SET status = ?, crashes = crashes + 1, owner = NULL,"
                        " next_at = ?, last_error = ?, updated_at = ?"
                        " WHERE event_seq = ? AND target = ?",
                        ("dead" if dead else "pending", now, error, now, seq, target),
                    )
                    parked += dead
                    due += not dead
            return due, parked

        return self._group.run(reclaim)

    def claim_due(
        self, limit: int, lease_seconds: float = 300.0, *, suspects: bool | None = None
    ) -> list[Delivery]:
        """Mark up to `limit` due deliveries running under this process, counting an attempt
        for each; closest to done first (`priority`), then oldest. `suspects` True claims
        only deliveries whose earlier attempts died with their process, False only the
        others, None any."""
        now = time.time()
        owner = current_owner()
        query = (
            "SELECT d.event_seq, d.target, d.attempts, e.envelope, d.crashes"
            " FROM deliveries d JOIN events e ON e.seq = d.event_seq"
            " WHERE d.status = 'pending' AND d.next_at <= ?"
            " AND (? IS NULL OR (d.crashes > 0) = ?)"
            " ORDER BY d.priority, d.next_at, d.event_seq LIMIT ?"
        )

        def claim(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            rows = db.execute(query, (now, suspects, suspects, limit)).fetchall()
            db.executemany(
                "UPDATE deliveries SET status = 'running', attempts = attempts + 1, owner = ?,"
                " next_at = ?, updated_at = ? WHERE event_seq = ? AND target = ?",
                [(owner, now + lease_seconds, now, row[0], row[1]) for row in rows],
            )
            return rows

        return [
            Delivery(seq, target, attempts, json.loads(raw), crashes)
            for seq, target, attempts, raw, crashes in self._group.run(claim)
        ]

    def complete(self, delivery: Delivery) -> None:
        self._group.run(
            lambda db: db.execute(
                "UPDATE deliveries SET status = 'done', owner = NULL, last_error = NULL,"
                " updated_at = ? WHERE event_seq = ? AND target = ?",
                (time.time(), delivery.event_seq, delivery.target),
            )
        )

    def fail(self, delivery: Delivery, error: str, *, max_attempts: int, delay: float) -> bool:
        """Record a failed attempt; returns True when the delivery is now dead-lettered."""
        attempts = delivery.attempts + 1
        dead = attempts >= max_attempts
        now = time.time()
        self._group.run(
            lambda db: db.execute(
                "UPDATE deliveries SET status = ?, attempts = ?, owner = NULL, next_at = ?,"
                " last_error = ?, updated_at = ? WHERE event_seq = ? AND target = ?",
                (
                    "dead" if dead else "pending",
                    attempts,
                    now + delay,
                    error[:2000],
                    now,
                    delivery.event_seq,
                    delivery.target,
                ),
            )
        )
        return dead

    def postpone(self, delivery: Delivery, reason: str, *, delay: float) -> None:
        """Hand a delivery back without counting its attempt: it waited on something that
        is not its fault (another live worker holding its key, a full disk)."""
        now = time.time()
        self._group.run(
            lambda db: db.execute(
                "UPDATE deliveries SET status = 'pending', attempts = ?, owner = NULL,"
                " next_at = ?, last_error = ?, updated_at = ? WHERE event_seq = ? AND target = ?",
                (
                    delivery.attempts,
                    now + delay,
                    f"waiting: {reason}"[:2000],
                    now,
                    delivery.event_seq,
                    delivery.target,
                ),
            )
        )

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

    def activity(self) -> tuple[int, float]:
        """What changes whenever the bus moves: the last event published and the last time
        a delivery was claimed, finished, failed or postponed."""
        with self._connect() as db:
            updated = db.execute("SELECT COALESCE(MAX(updated_at), 0) FROM deliveries").fetchone()
        return self.last_seq(), updated[0]

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
                    "UPDATE deliveries SET status = 'pending', attempts = 0, crashes = 0,"
                    " next_at = ? WHERE event_seq = ? AND target = ?",
                    (time.time(), *letter),
                )
                count += 1
            db.execute("COMMIT")
        _wake_listeners()
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

    # --- retention --------------------------------------------------------------------

    def prune(self, finished_before: float, events_before: str) -> tuple[int, int]:
        """Delete finished (`done`) deliveries last updated before `finished_before` (epoch
        seconds), and events older than `events_before` (ISO-8601) that no unfinished or
        dead delivery needs and that routing has passed. Returns (deliveries, events)."""

        def prune(db: sqlite3.Connection) -> tuple[int, int]:
            deliveries = db.execute(
                "DELETE FROM deliveries WHERE status = 'done' AND updated_at < ?",
                (finished_before,),
            ).rowcount
            row = db.execute("SELECT seq FROM cursor WHERE name = 'router'").fetchone()
            routed = row[0] if row else 0
            events = db.execute(
                "DELETE FROM events WHERE time < ? AND seq <= ? AND NOT EXISTS"
                " (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq"
                "  AND d.status != 'done')",
                (events_before, routed),
            ).rowcount
            return deliveries, events

        return self._group.run(prune)


class LocalEventBus:
    """The bus port over a LocalBusStore."""

    def __init__(self, store: LocalBusStore, *, account: str, region: str) -> None:
        self.store = store
        self._account = account
        self._region = region

    def put(self, events: Sequence[OutgoingEvent]) -> None:
        envelopes = [make_envelope(e, account=self._account, region=self._region) for e in events]
        try:
            self.store.append(envelopes)
        except sqlite3.Error as exc:
            # Not acknowledged (a full disk, a locked file): the caller retries, as it would
            # EventBridge's failed entries; the webhook answers 503 so X retries.
            raise PublishError(f"the local bus could not commit: {exc}") from exc


def _wake_listeners() -> None:
    for listener in list(_listeners):
        listener.set()


def add_listener(event: threading.Event) -> None:
    _listeners.append(event)


def remove_listener(event: threading.Event) -> None:
    if event in _listeners:
        _listeners.remove(event)
