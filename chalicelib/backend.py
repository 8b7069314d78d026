"""Adapter selection: MAGPIE_BACKEND=aws|local picks the implementation of every port.

Each factory builds its adapter on first use and caches it (no work at import time).
`reset()` clears the caches, for tests that change the environment.
"""

from __future__ import annotations

import sys
from functools import cache, lru_cache
from typing import Any

from chalicelib.config import settings


@cache
def aws_client(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name=settings().region)


@lru_cache(maxsize=1)
def event_bus() -> Any:
    if settings().backend == "aws":
        from chalicelib.bus.eventbridge import EventBridgeBus

        return EventBridgeBus(aws_client("events"), settings().event_bus_name)
    from chalicelib.bus.local import LocalEventBus

    bus = LocalEventBus(local_bus_store(), account=settings().account, region=settings().region)
    return _maybe_faulty("bus", bus)


@lru_cache(maxsize=1)
def local_bus_store() -> Any:
    from chalicelib.bus.local import LocalBusStore

    return LocalBusStore(settings().home / "bus.sqlite3")


def _idempotency_store(ttl_seconds: int | None = None, in_progress_ms: int | None = None) -> Any:
    """Powertools idempotency: DynamoDB on AWS, SQLite under MAGPIE_HOME locally."""
    from chalicelib import idempotency as idem

    config = settings()
    if config.backend == "aws":
        table = config.idempotency_table
        make_layer = lambda: idem.dynamodb_persistence_layer(table)  # noqa: E731
    else:
        path = config.home / "idempotency.sqlite3"
        make_layer = lambda: idem.sqlite_persistence_layer(path)  # noqa: E731
    options: dict[str, int] = {}
    if ttl_seconds:
        options["ttl_seconds"] = ttl_seconds
    if in_progress_ms:
        options["in_progress_ms"] = in_progress_ms
    return idem.PowertoolsIdempotency(make_layer, **options)


@lru_cache(maxsize=1)
def idempotency() -> Any:
    return _idempotency_store()


@lru_cache(maxsize=1)
def ingress_idempotency() -> Any:
    """Ingress's store: publishing takes milliseconds, so a key held by a crashed attempt is
    freed after 10 s, well inside X's retries of the 503 the second copy gets meanwhile."""
    return _idempotency_store(in_progress_ms=10_000)


@lru_cache(maxsize=1)
def blob_store() -> Any:
    from chalicelib import blobs

    if settings().backend == "aws":
        return blobs.S3BlobStore(aws_client("s3"), settings().media_bucket)
    return _maybe_faulty("blob", blobs.LocalBlobStore(settings().home / "media"))


@lru_cache(maxsize=1)
def text_analyser() -> Any:
    config = settings()
    if config.text_provider == "comprehend":
        from chalicelib.analysis.aws_text import ComprehendTextAnalyser

        return ComprehendTextAnalyser(
            aws_client("comprehend"), capabilities=config.text_capabilities
        )
    from chalicelib.analysis.local_text import LocalTextAnalyser
    from chalicelib.analysis.sentiment import local_sentiment

    return _maybe_faulty("text", LocalTextAnalyser(local_sentiment(config.local_sentiment)))


@lru_cache(maxsize=1)
def face_gallery() -> Any:
    """Known faces under MAGPIE_HOME locally; on AWS a local copy of the gallery kept in
    FACE_GALLERY_BUCKET (each Lambda container has only its own /tmp)."""
    config = settings()
    if config.backend == "aws":
        from chalicelib.analysis.gallery_sync import SyncedFaceGallery
        from chalicelib.blobs import S3BlobStore

        store = S3BlobStore(aws_client("s3"), config.face_gallery_bucket)
        return SyncedFaceGallery(store, config.home / "faces")
    from chalicelib.analysis.gallery import FaceGallery

    return FaceGallery(config.home / "faces")


@lru_cache(maxsize=1)
def image_analyser() -> Any:
    config = settings()
    if config.image_provider == "rekognition":
        from chalicelib.analysis.aws_image import RekognitionImageAnalyser

        return RekognitionImageAnalyser(
            aws_client("rekognition"),
            config.media_bucket,
            collection_id=config.rekognition_collection,
            capabilities=config.image_capabilities,
        )
    from chalicelib.analysis.local_image import LocalImageAnalyser

    return _maybe_faulty("image", LocalImageAnalyser(blob_store().get, face_gallery()))


@lru_cache(maxsize=1)
def conversation() -> Any:
    config = settings()
    if config.conversation_provider == "lex":
        from chalicelib.responders.lex import LexConversation

        return LexConversation(
            aws_client("lexv2-runtime"),
            config.lex_bot_id,
            config.lex_bot_alias_id,
            config.lex_locale,
        )
    from chalicelib.responders.intents import LocalConversation

    return _maybe_faulty("conversation", LocalConversation())


@lru_cache(maxsize=1)
def poster() -> Any:
    """X for real on AWS (and locally with MAGPIE_LIVE); the dry-run outbox otherwise."""
    config = settings()
    if config.backend == "local" and not config.live_replies:
        from chalicelib.egress.outbox import DryRunOutbox

        return _maybe_faulty("x", DryRunOutbox(config.home / "outbox"))
    from chalicelib.egress.poster import XPoster
    from chalicelib.egress.x_client import XClient, XCredentials
    from chalicelib.secrets import twitter_keys

    keys = twitter_keys()
    if not keys.can_post:
        from chalicelib.config import ConfigError

        raise ConfigError(
            "posting to X needs TWITTER_API_KEY, TWITTER_API_SECRET, TWITTER_ACCESS_TOKEN and "
            "TWITTER_ACCESS_TOKEN_SECRET (or the TwitterSecret on AWS)"
        )
    credentials = XCredentials(
        keys.api_key, keys.api_secret, keys.access_token, keys.access_token_secret
    )
    return XPoster(XClient(credentials, timeout=config.http_timeout_seconds))


@lru_cache(maxsize=1)
def alert_sink() -> Any:
    from chalicelib import alerts

    if settings().backend == "aws":
        return alerts.SnsAlertSink(aws_client("sns"), settings().alert_topic_arn)
    return alerts.LocalAlertSink(settings().home / "alerts.jsonl")


@lru_cache(maxsize=1)
def guard_store() -> Any:
    """The loop guards' counters: DynamoDB on AWS, SQLite under MAGPIE_HOME locally."""
    from chalicelib.egress import guards

    if settings().backend == "aws":
        return guards.DynamoDbGuardStore(aws_client("dynamodb"), settings().guard_table)
    return guards.SqliteGuardStore(settings().home / "guards.sqlite3")


@lru_cache(maxsize=1)
def reply_idempotency() -> Any:
    """Egress's ledger of replies: idempotency as above, kept for REPLY_MEMORY_DAYS rather
    than a week, so that replaying any archive we keep never answers a message twice. Its
    own persistence layer: Powertools fixes a layer's TTL the first time it is used."""
    return _idempotency_store(settings().reply_memory_days * 24 * 3600)


def reset() -> None:
    """Forget every cached adapter and setting (tests, and `magpie` switching MAGPIE_HOME)."""
    from chalicelib.config import reset_settings
    from chalicelib.secrets import reset_secret_cache

    factories = (
        aws_client,
        event_bus,
        ingress_idempotency,
        local_bus_store,
        idempotency,
        blob_store,
        text_analyser,
        face_gallery,
        image_analyser,
        conversation,
        poster,
        alert_sink,
        guard_store,
        reply_idempotency,
    )
    for factory in factories:
        factory.cache_clear()
    reset_settings()
    reset_secret_cache()
    # Powertools caches fetched secrets for max_age across calls; forget them too.
    if "aws_lambda_powertools.utilities.parameters" in sys.modules:
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()  # type: ignore[no-untyped-call]


# --- fault injection (reliability tests; chalicelib/faults.py) ------------------------------


def _maybe_faulty(port: str, adapter: Any) -> Any:
    """The local adapter, wrapped to fail at random when MAGPIE_FAULTS is set (never on AWS)."""
    if not settings().env.get("MAGPIE_FAULTS"):
        return adapter
    from chalicelib import faults

    return faults.wrap(port, adapter)
