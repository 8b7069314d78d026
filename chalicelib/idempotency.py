"""At-most-once work keyed by a natural key (tweet id, DM id), on Powertools idempotency.

Both backends run the same Powertools code path: on AWS its DynamoDB persistence layer, locally
`SqlitePersistenceLayer` below (a persistence layer is Powertools' own adapter seam).
Powertools is imported lazily: ingress imports this module on its cold path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from chalicelib.errors import UnavailableError

T = TypeVar("T")

DEFAULT_TTL_SECONDS = 7 * 24 * 3600  # longer than the archive replays we expect to run
DEFAULT_IN_PROGRESS_MS = 120_000  # a crashed attempt frees its key after this long


class IdempotencyInProgress(UnavailableError, RuntimeError):
    """The same key is being worked on right now; retry later."""


class _FixedRemainingTime:
    """Stands in for a Lambda context so in-progress records expire after a crash."""

    def __init__(self, millis: int) -> None:
        self._millis = millis
        self.function_name = "magpie"
        self.aws_request_id = "local"

    def get_remaining_time_in_millis(self) -> int:
        return self._millis


class PowertoolsIdempotency:
    """The IdempotencyStore port over Powertools persistence layers, one per namespace.

    Powertools' decorator re-`configure()`s its persistence layer on every call, writing the
    key prefix into the layer. Two namespaces sharing one layer from two threads would save a
    finished record under the other's prefix and leave the real one INPROGRESS, so each
    namespace gets its own layer instance (all of them over the same table or file).
    """

    def __init__(
        self,
        make_layer: Callable[[], Any],
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        in_progress_ms: int = DEFAULT_IN_PROGRESS_MS,
    ) -> None:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

        self._make_layer = make_layer
        self._layers: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._config = IdempotencyConfig(expires_after_seconds=ttl_seconds, use_local_cache=False)
        self._config.register_lambda_context(_FixedRemainingTime(in_progress_ms))

    def once(self, namespace: str, key: str, fn: Callable[[], T]) -> T:
        from aws_lambda_powertools.utilities.idempotency import idempotent_function
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
        )

        @idempotent_function(
            data_keyword_argument="natural_key",
            persistence_store=self._layer(namespace),
            config=self._config,
            key_prefix=f"magpie.{namespace}",
        )
        def run(natural_key: str) -> Any:
            return fn()

        try:
            return run(natural_key=key)
        except IdempotencyAlreadyInProgressError as exc:
            raise IdempotencyInProgress(f"{namespace}:{key} is already in progress") from exc

    def _layer(self, namespace: str) -> Any:
        with self._lock:
            if namespace not in self._layers:
                self._layers[namespace] = self._make_layer()
            return self._layers[namespace]


def sqlite_persistence_layer(path: Path) -> Any:
    """Build the local persistence layer (a class defined lazily to keep Powertools off import)."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyItemAlreadyExistsError,
        IdempotencyItemNotFoundError,
    )
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

    from chalicelib.sqlite_file import SqliteFile

    class SqlitePersistenceLayer(BasePersistenceLayer):
        """Same conditions as the DynamoDB layer: a key may be taken only if absent, expired,
        or in progress past its in-progress expiry."""

        def __init__(self, db_path: Path) -> None:
            super().__init__()
            self._connect = SqliteFile(
                db_path,
                "CREATE TABLE IF NOT EXISTS idempotency (id TEXT PRIMARY KEY, status TEXT,"
                " expiration INTEGER, in_progress_expiration INTEGER, data TEXT,"
                " validation TEXT)",
            ).connect

        def _get_record(self, idempotency_key: str) -> DataRecord:
            with self._connect() as db:
                row = db.execute(
                    "SELECT status, expiration, in_progress_expiration, data, validation"
                    " FROM idempotency WHERE id = ?",
                    (idempotency_key,),
                ).fetchone()
            if row is None:
                raise IdempotencyItemNotFoundError
            return DataRecord(
                idempotency_key=idempotency_key,
                status=row[0],
                expiry_timestamp=row[1],
                in_progress_expiry_timestamp=row[2],
                response_data=row[3] or "",
                payload_hash=row[4] or "",
            )

        def _put_record(self, data_record: DataRecord) -> None:
            now = time.time()
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute(
                    "SELECT status, expiration, in_progress_expiration FROM idempotency"
                    " WHERE id = ?",
                    (data_record.idempotency_key,),
                ).fetchone()
                if row is not None and not _may_take(row, now):
                    db.execute("ROLLBACK")
                    raise IdempotencyItemAlreadyExistsError
                db.execute(
                    "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, NULL, ?)",
                    (
                        data_record.idempotency_key,
                        data_record.status,
                        data_record.expiry_timestamp,
                        data_record.in_progress_expiry_timestamp,
                        data_record.payload_hash,
                    ),
                )
                db.execute("COMMIT")

        def _update_record(self, data_record: DataRecord) -> None:
            with self._connect() as db:
                db.execute(
                    "UPDATE idempotency SET status = ?, expiration = ?, data = ? WHERE id = ?",
                    (
                        data_record.status,
                        data_record.expiry_timestamp,
                        data_record.response_data,
                        data_record.idempotency_key,
                    ),
                )

        def _delete_record(self, data_record: DataRecord) -> None:
            with self._connect() as db:
                db.execute("DELETE FROM idempotency WHERE id = ?", (data_record.idempotency_key,))

    return SqlitePersistenceLayer(path)


def _may_take(row: tuple[str, int | None, int | None], now: float) -> bool:
    status, expiration, in_progress_expiration = row
    if expiration is not None and expiration < now:
        return True
    return (
        status == "INPROGRESS"
        and in_progress_expiration is not None
        and in_progress_expiration < now * 1000
    )


def dynamodb_persistence_layer(table_name: str) -> Any:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=table_name)
