"""Adapter selection: MAGPIE_BACKEND=aws|local picks the implementation of every port.

Each factory builds its adapter on first use and caches it (no work at import time).
`reset()` clears the caches, for tests that change the environment.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib.config import settings


@lru_cache(maxsize=None)
def aws_client(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name=settings().region)


@lru_cache(maxsize=1)
def event_bus() -> Any:
    if settings().backend == "aws":
        from chalicelib.bus.eventbridge import EventBridgeBus

        return EventBridgeBus(aws_client("events"), settings().event_bus_name)
    from chalicelib.bus.local import LocalEventBus

    return LocalEventBus(local_bus_store(), account=settings().account, region=settings().region)


@lru_cache(maxsize=1)
def local_bus_store() -> Any:
    from chalicelib.bus.local import LocalBusStore

    return LocalBusStore(settings().home / "bus.sqlite3")


@lru_cache(maxsize=1)
def idempotency() -> Any:
    from chalicelib import idempotency as idem

    if settings().backend == "aws":
        layer = idem.dynamodb_persistence_layer(settings().idempotency_table)
    else:
        layer = idem.sqlite_persistence_layer(settings().home / "idempotency.sqlite3")
    return idem.PowertoolsIdempotency(layer)


@lru_cache(maxsize=1)
def blob_store() -> Any:
    from chalicelib import blobs

    if settings().backend == "aws":
        return blobs.S3BlobStore(aws_client("s3"), settings().media_bucket)
    return blobs.LocalBlobStore(settings().home / "media")


def reset() -> None:
    """Forget every cached adapter and setting (tests, and `magpie` switching MAGPIE_HOME)."""
    from chalicelib.config import reset_settings
    from chalicelib.secrets import reset_secret_cache

    for factory in (aws_client, event_bus, local_bus_store, idempotency, blob_store):
        factory.cache_clear()
    reset_settings()
    reset_secret_cache()
