"""The AnalysisExecutions adapters: which message each analysis execution analyses.

On AWS the record is one item of the idempotency table (its `id` key and `expiration` TTL
attribute suit it), `analysis-execution:<execution ARN>` holding the MESSAGE_RECEIVED detail.
DynamoDB deletes expired items only eventually (within days), so `recall` checks the expiry
itself: an expired record reads as none, whether or not it is still stored.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

KEY_PREFIX = "analysis-execution:"  # beside Powertools' `magpie.<namespace>#<hash>` keys


class DynamoDbExecutions:
    """The AWS adapter, over the idempotency table."""

    def __init__(self, client: Any, table: str, *, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._clock = clock

    def remember(self, execution: str, message: dict[str, Any], expires_at: int) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                "id": {"S": KEY_PREFIX + execution},
                "message": {"S": json.dumps(message, separators=(",", ":"))},
                "expiration": {"N": str(expires_at)},
            },
        )

    def recall(self, execution: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table,
            Key={"id": {"S": KEY_PREFIX + execution}},
            ConsistentRead=True,
        ).get("Item")
        if item is None or int(item["expiration"]["N"]) <= self._clock():
            return None
        message: dict[str, Any] = json.loads(item["message"]["S"])
        return message


class MemoryExecutions:
    """The local adapter. Locally nothing reads it across processes: the orchestrator
    (chalicelib/analysis/orchestrator.py) runs the workflow in-process and reports every
    ending itself; only the core app's handlers, driven in one process, use it."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._records: dict[str, tuple[dict[str, Any], int]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def remember(self, execution: str, message: dict[str, Any], expires_at: int) -> None:
        with self._lock:
            self._records[execution] = (message, expires_at)

    def recall(self, execution: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._records.get(execution)
        if record is None or record[1] <= self._clock():
            return None
        return record[0]
