"""The GuardStore adapters: SQLite under MAGPIE_HOME locally, DynamoDB on AWS.

They keep the loop guards' counters (chalicelib/egress/loop_guards.py: the rules), each
reply's intent to post (`mark_intent`, written durably before the post: FULL sync locally,
where the counters are NORMAL), so an attempt that finds an earlier intent for its message
looks the reply up before posting again (send.py), and the day's priced X spend for the
daily X budget (budget.py). On AWS they use the idempotency table by default, whose TTL
attribute `expiration` cleans them up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalicelib.sqlite_file import SqliteFile

log = logging.getLogger(__name__)

_PRUNE = (
    "DELETE FROM author_slots WHERE expires_at < ?",
    "DELETE FROM post_depths WHERE expires_at < ?",
    "DELETE FROM post_intents WHERE expires_at < ?",
    "DELETE FROM x_spend WHERE expires_at < ?",
)


class SqliteGuardStore:
    """The local adapter: one SQLite file under MAGPIE_HOME, safe across threads/processes."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._db = SqliteFile(
            path,
            "CREATE TABLE IF NOT EXISTS author_slots"
            " (bucket TEXT PRIMARY KEY, used INTEGER NOT NULL, expires_at INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS post_depths"
            " (post_id TEXT PRIMARY KEY, depth INTEGER NOT NULL, expires_at INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS post_intents"
            " (reply_key TEXT PRIMARY KEY, at REAL NOT NULL, expires_at INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS x_spend"
            " (day TEXT PRIMARY KEY, micro_usd INTEGER NOT NULL, expires_at INTEGER NOT NULL);",
            # Counters and depths survive kill -9 (WAL); a power cut may undo the last few,
            # which only loosens a limit for a moment. The intent is committed with FULL.
            synchronous="NORMAL",
        ).connect

    def take_slot(self, bucket: str, limit: int, expires_at: int) -> bool:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")  # the read and the increment are one step
            db.execute("DELETE FROM author_slots WHERE expires_at < ?", (int(self._clock()),))
            row = db.execute("SELECT used FROM author_slots WHERE bucket = ?", (bucket,)).fetchone()
            if row is not None and row[0] >= limit:
                db.execute("ROLLBACK")
                return False
            db.execute(
                "INSERT INTO author_slots (bucket, used, expires_at) VALUES (?, 1, ?)"
                " ON CONFLICT(bucket) DO UPDATE SET used = used + 1",
                (bucket, expires_at),
            )
            db.execute("COMMIT")
            return True

    def give_back_slot(self, bucket: str) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE author_slots SET used = used - 1 WHERE bucket = ? AND used > 0", (bucket,)
            )

    def remember_depth(self, post_id: str, depth: int, expires_at: int) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO post_depths (post_id, depth, expires_at) VALUES (?, ?, ?)",
                (post_id, depth, expires_at),
            )

    def depth_of(self, post_id: str) -> int | None:
        with self._db() as db:
            row = db.execute(
                "SELECT depth FROM post_depths WHERE post_id = ? AND expires_at >= ?",
                (post_id, int(self._clock())),
            ).fetchone()
        return int(row[0]) if row else None

    def mark_intent(self, reply_key: str, at: float, expires_at: int) -> None:
        with self._db() as db:
            # On disk before the post goes out, even across a power cut.
            db.execute("PRAGMA synchronous=FULL")
            try:
                db.execute(
                    "INSERT OR REPLACE INTO post_intents (reply_key, at, expires_at)"
                    " VALUES (?, ?, ?)",
                    (reply_key, at, expires_at),
                )
            finally:
                db.execute("PRAGMA synchronous=NORMAL")

    def forget_intent(self, reply_key: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM post_intents WHERE reply_key = ?", (reply_key,))

    def intent_at(self, reply_key: str) -> float | None:
        with self._db() as db:
            row = db.execute(
                "SELECT at FROM post_intents WHERE reply_key = ? AND expires_at >= ?",
                (reply_key, int(self._clock())),
            ).fetchone()
        return float(row[0]) if row else None

    def take_spend(self, day: str, micro_usd: int, limit_micro_usd: int, expires_at: int) -> bool:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")  # the read and the addition are one step
            row = db.execute("SELECT micro_usd FROM x_spend WHERE day = ?", (day,)).fetchone()
            if (row[0] if row else 0) + micro_usd > limit_micro_usd:
                db.execute("ROLLBACK")
                return False
            db.execute(
                "INSERT INTO x_spend (day, micro_usd, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT(day) DO UPDATE SET micro_usd = micro_usd + excluded.micro_usd",
                (day, micro_usd, expires_at),
            )
            db.execute("COMMIT")
            return True

    def give_back_spend(self, day: str, micro_usd: int) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE x_spend SET micro_usd = max(0, micro_usd - ?) WHERE day = ?",
                (micro_usd, day),
            )

    def spend_of(self, day: str) -> int:
        with self._db() as db:
            row = db.execute("SELECT micro_usd FROM x_spend WHERE day = ?", (day,)).fetchone()
        return int(row[0]) if row else 0

    def prune(self) -> int:
        """Delete expired counters, depths, intents and spends (retention); returns how many."""
        now = int(self._clock())
        with self._db() as db:
            return sum(db.execute(delete, (now,)).rowcount for delete in _PRUNE)


class DynamoDbGuardStore:
    """The AWS adapter: items `guard:slot:<bucket>` and `guard:depth:<post id>` in a table
    keyed by the string `id` (the idempotency table's schema), expiring via `expiration`."""

    def __init__(self, client: Any, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._clock = clock

    def take_slot(self, bucket: str, limit: int, expires_at: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": f"guard:slot:{bucket}"}},
                UpdateExpression="ADD #used :one SET #exp = if_not_exists(#exp, :exp)",
                ConditionExpression="attribute_not_exists(#used) OR #used < :limit",
                ExpressionAttributeNames={"#used": "used", "#exp": "expiration"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":exp": {"N": str(expires_at)},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def give_back_slot(self, bucket: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": f"guard:slot:{bucket}"}},
                UpdateExpression="ADD #used :minus_one",
                ConditionExpression="#used > :zero",
                ExpressionAttributeNames={"#used": "used"},
                ExpressionAttributeValues={":minus_one": {"N": "-1"}, ":zero": {"N": "0"}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            # Nothing to give back (the window expired meanwhile): the count is already right.
            log.info("slot %s was already empty", bucket)

    def remember_depth(self, post_id: str, depth: int, expires_at: int) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                "id": {"S": f"guard:depth:{post_id}"},
                "depth": {"N": str(depth)},
                "expiration": {"N": str(expires_at)},
            },
        )

    def mark_intent(self, reply_key: str, at: float, expires_at: int) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                "id": {"S": f"guard:intent:{reply_key}"},
                "at": {"N": repr(at)},
                "expiration": {"N": str(expires_at)},
            },
        )

    def forget_intent(self, reply_key: str) -> None:
        self._client.delete_item(
            TableName=self._table, Key={"id": {"S": f"guard:intent:{reply_key}"}}
        )

    def intent_at(self, reply_key: str) -> float | None:
        item = self._client.get_item(
            TableName=self._table,
            Key={"id": {"S": f"guard:intent:{reply_key}"}},
            ConsistentRead=True,
        ).get("Item")
        if not item or int(item["expiration"]["N"]) < self._clock():
            return None
        return float(item["at"]["N"])

    def take_spend(self, day: str, micro_usd: int, limit_micro_usd: int, expires_at: int) -> bool:
        if micro_usd > limit_micro_usd:  # not even a fresh day has room for it
            return False
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": f"guard:xspend:{day}"}},
                UpdateExpression="ADD #spent :amount SET #exp = if_not_exists(#exp, :exp)",
                ConditionExpression="attribute_not_exists(#spent) OR #spent <= :room",
                ExpressionAttributeNames={"#spent": "micro_usd", "#exp": "expiration"},
                ExpressionAttributeValues={
                    ":amount": {"N": str(micro_usd)},
                    ":room": {"N": str(limit_micro_usd - micro_usd)},
                    ":exp": {"N": str(expires_at)},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def give_back_spend(self, day: str, micro_usd: int) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": f"guard:xspend:{day}"}},
                UpdateExpression="ADD #spent :minus",
                ConditionExpression="#spent >= :amount",
                ExpressionAttributeNames={"#spent": "micro_usd"},
                ExpressionAttributeValues={
                    ":minus": {"N": str(-micro_usd)},
                    ":amount": {"N": str(micro_usd)},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            log.info("spend of %s was already below what is given back", day)

    def spend_of(self, day: str) -> int:
        item = self._client.get_item(
            TableName=self._table, Key={"id": {"S": f"guard:xspend:{day}"}}, ConsistentRead=True
        ).get("Item")
        return int(item["micro_usd"]["N"]) if item else 0

    def depth_of(self, post_id: str) -> int | None:
        item = self._client.get_item(
            TableName=self._table, Key={"id": {"S": f"guard:depth:{post_id}"}}, ConsistentRead=True
        ).get("Item")
        # DynamoDB's TTL deletes lazily (up to days late): an expired item counts as gone.
        if not item or int(item["expiration"]["N"]) < self._clock():
            return None
        return int(item["depth"]["N"])
