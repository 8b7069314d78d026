"""At-most-once work keyed by a natural key (tweet id, DM id), on Powertools idempotency.

Both backends run the same Powertools code path: on AWS its DynamoDB persistence layer, locally
`SqlitePersistenceLayer` below (a persistence layer is Powertools' own adapter seam).
Powertools is imported lazily: ingress imports this module on its cold path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from chalicelib.ports import IdempotencyInProgress, IdempotencyUnavailable

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 7 * 24 * 3600  # longer than the archive replays we expect to run
DEFAULT_IN_PROGRESS_MS = 120_000  # a crashed attempt frees its key after this long


# Keys this process holds in progress right now, per thread (a stack, for nested `once`).
# A record this process wrote but no longer runs (its completion could not be saved) is
# taken over at once instead of waiting for its in-progress window.
_held_keys: set[str] = set()
_held_lock = threading.Lock()
_held_stack = threading.local()


def _held_here() -> list[str]:
    stack = getattr(_held_stack, "keys", None)
    if stack is None:
        stack = _held_stack.keys = []
    return stack


def _hold(key: str) -> None:
    _held_here().append(key)
    with _held_lock:
        _held_keys.add(key)


def _release_held(mark: int) -> None:
    stack = _held_here()
    with _held_lock:
        _held_keys.difference_update(stack[mark:])
    del stack[mark:]


def _release_key(key: str) -> None:
    stack = _held_here()
    if key in stack:
        stack.remove(key)
    with _held_lock:
        _held_keys.discard(key)


def _held_by_this_process(key: str) -> bool:
    with _held_lock:
        return key in _held_keys


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
        self._ttl_seconds = ttl_seconds
        self._config = IdempotencyConfig(expires_after_seconds=ttl_seconds, use_local_cache=False)
        # Duck-typed: Powertools reads only get_remaining_time_in_millis from the context.
        self._config.register_lambda_context(_FixedRemainingTime(in_progress_ms))  # type: ignore[arg-type]

    def once(self, namespace: str, key: str, fn: Callable[[], T], *, context: Any = None) -> T:
        """`fn()` once per (namespace, key); later calls return its first result.

        `context` is the Lambda context on AWS: an in-progress record then expires when the
        invocation would have timed out, so a retry after a crashed invocation can take
        over. Locally the record names its process and is taken over once that process
        is gone (or after the fixed in-progress window)."""
        from aws_lambda_powertools.utilities.idempotency import idempotent_function
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
        )

        @idempotent_function(
            data_keyword_argument="natural_key",
            persistence_store=self._layer(namespace),
            config=self._config_for(context),
            key_prefix=f"magpie.{namespace}",
        )
        def run(natural_key: str) -> Any:
            return fn()

        held = len(_held_here())
        try:
            return run(natural_key=key)
        except IdempotencyAlreadyInProgressError as exc:
            raise IdempotencyInProgress(f"{namespace}:{key} is already in progress") from exc
        except IdempotencyPersistenceLayerError as exc:
            cause = exc.__cause__ or exc
            raise IdempotencyUnavailable(
                f"idempotency store failed for {namespace}:{key}: {type(cause).__name__}: {cause}"
            ) from cause
        finally:
            _release_held(held)

    def _config_for(self, context: Any) -> Any:
        if not hasattr(context, "get_remaining_time_in_millis"):
            return self._config
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

        # One config per invocation: the shared one is read by other threads meanwhile.
        config = IdempotencyConfig(expires_after_seconds=self._ttl_seconds, use_local_cache=False)
        config.register_lambda_context(context)
        return config

    def _layer(self, namespace: str) -> Any:
        with self._lock:
            if namespace not in self._layers:
                self._layers[namespace] = self._make_layer()
            return self._layers[namespace]


IDEMPOTENCY_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS idempotency (id TEXT PRIMARY KEY, status TEXT,"
    " expiration INTEGER, in_progress_expiration INTEGER, data TEXT, validation TEXT,"
    " owner TEXT)"
)


def sqlite_persistence_layer(path: Path) -> Any:
    """Build the local persistence layer (a class defined lazily to keep Powertools off import)."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyItemAlreadyExistsError,
        IdempotencyItemNotFoundError,
    )
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

    from chalicelib.process_identity import current_owner
    from chalicelib.sqlite_file import SqliteFile

    class SqlitePersistenceLayer(BasePersistenceLayer):
        """Same conditions as the DynamoDB layer: a key may be taken only if absent, expired,
        or in progress past its in-progress expiry; and, locally, in progress in a process
        that is gone (the record names its owner)."""

        def __init__(self, db_path: Path) -> None:
            super().__init__()
            # synchronous=NORMAL: in WAL mode a commit survives the process being killed;
            # a power cut may undo the last ones, which redelivery then redoes (the reply's
            # intent, which guards against a second post, is kept with FULL, in guards.py).
            sqlite = SqliteFile(db_path, IDEMPOTENCY_SCHEMA, synchronous="NORMAL")
            sqlite.add_column("idempotency", "owner", "TEXT")
            self._connect = sqlite.connect

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
            owner = current_owner()
            key = data_record.idempotency_key
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute(
                    "SELECT status, expiration, in_progress_expiration, owner FROM idempotency"
                    " WHERE id = ?",
                    (key,),
                ).fetchone()
                if row is not None and not _may_take(key, row, now, owner):
                    db.execute("ROLLBACK")
                    raise IdempotencyItemAlreadyExistsError
                if row is not None and row[0] == "INPROGRESS":
                    log.warning("taking over %s, left in progress by %s", key, row[3])
                db.execute(
                    "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, NULL, ?, ?)",
                    (
                        key,
                        data_record.status,
                        data_record.expiry_timestamp,
                        data_record.in_progress_expiry_timestamp,
                        data_record.payload_hash,
                        owner,
                    ),
                )
                # Held before the commit is visible: another thread of this process that
                # reads the committed row must already see it held, or it would take it over.
                _hold(key)
                try:
                    db.execute("COMMIT")
                except BaseException:
                    _release_key(key)
                    raise

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


def _may_take(key: str, row: tuple[Any, ...], now: float, me: str) -> bool:
    from chalicelib.process_identity import is_alive

    status, expiration, in_progress_expiration, owner = row
    if expiration is not None and expiration < now:
        return True
    if status != "INPROGRESS":
        return False
    if in_progress_expiration is not None and in_progress_expiration < now * 1000:
        return True
    if owner == me:  # ours: still running only if a thread of ours holds it
        return not _held_by_this_process(key)
    return not is_alive(owner)


def prune_expired(path: Path, now: float | None = None) -> int:
    """Delete the local records past their TTL; returns how many (retention)."""
    from chalicelib.sqlite_file import SqliteFile

    now = time.time() if now is None else now
    with SqliteFile(path, IDEMPOTENCY_SCHEMA, synchronous="NORMAL").connect() as db:
        return db.execute(
            "DELETE FROM idempotency WHERE expiration IS NOT NULL AND expiration < ?",
            (int(now),),
        ).rowcount


def dynamodb_persistence_layer(table_name: str) -> Any:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=table_name)
