"""Adapter selection: MAGPIE_BACKEND=aws|local picks the implementation of every port.

Each factory builds its adapter on first use and caches it (no work at import time), and
returns the port's Protocol from `chalicelib.ports`, so the type checker holds every adapter
to its port. `reset()` clears every cache, for tests and for `magpie` switching MAGPIE_HOME.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar, cast

from chalicelib.config import settings
from chalicelib.ports import (
    AlertSink,
    AnalysisExecutions,
    BlobStore,
    Conversation,
    EventBus,
    GuardStore,
    IdempotencyStore,
    ImageAnalyser,
    KnownFaces,
    Poster,
    ReplyLookup,
    TextAnalyser,
)

if TYPE_CHECKING:
    from functools import _lru_cache_wrapper

    from chalicelib.bus.local import LocalBusStore

T = TypeVar("T")

# `cache_clear` of every cached factory, filled as the factories are defined below.
_CACHES: list[Callable[[], None]] = []


def _cached(factory: Callable[..., T]) -> _lru_cache_wrapper[T]:
    """`factory` cached (one adapter per process) and registered for `reset()`."""
    wrapper = lru_cache(maxsize=None)(factory)
    _CACHES.append(wrapper.cache_clear)
    return wrapper


@_cached
def aws_client(service: str) -> Any:
    """A boto3 client (untyped: boto3 ships no type information)."""
    import boto3

    return boto3.client(service, region_name=settings().region)


@_cached
def event_bus() -> EventBus:
    if settings().backend == "aws":
        from chalicelib.bus.eventbridge import EventBridgeBus

        return EventBridgeBus(aws_client("events"), settings().event_bus_name)
    from chalicelib.bus.local import LocalEventBus

    bus = LocalEventBus(local_bus_store(), account=settings().account, region=settings().region)
    return _maybe_faulty("bus", bus)


@_cached
def local_bus_store() -> LocalBusStore:
    from chalicelib.bus.local import LocalBusStore

    return LocalBusStore(settings().home / "bus.sqlite3")


def _idempotency_store(
    ttl_seconds: int | None = None, in_progress_ms: int | None = None
) -> IdempotencyStore:
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


@_cached
def idempotency() -> IdempotencyStore:
    return _idempotency_store()


@_cached
def ingress_idempotency() -> IdempotencyStore:
    """Ingress's store: publishing takes milliseconds, so a key held by a crashed attempt is
    freed after 10 s, well inside X's retries of the 503 the second copy gets meanwhile."""
    return _idempotency_store(in_progress_ms=10_000)


@_cached
def ending_idempotency() -> IdempotencyStore:
    """Which ending each message's analysis published (chalicelib/analysis/ending.py), kept
    as long as its reply's record: no replay of any archive we keep ends a message twice."""
    return _idempotency_store(settings().reply_memory_days * 24 * 3600)


@_cached
def analysis_executions() -> AnalysisExecutions:
    """DynamoDB on AWS (the idempotency table). Locally the orchestrator runs the workflow
    in-process and reports every ending itself, so the record lives in memory."""
    from chalicelib.analysis import executions

    if settings().backend == "aws":
        return executions.DynamoDbExecutions(aws_client("dynamodb"), settings().idempotency_table)
    return executions.MemoryExecutions()


@_cached
def blob_store() -> BlobStore:
    from chalicelib import blobs

    if settings().backend == "aws":
        return blobs.S3BlobStore(aws_client("s3"), settings().media_bucket)
    return _maybe_faulty("blob", blobs.LocalBlobStore(settings().home / "media"))


@_cached
def text_analyser() -> TextAnalyser:
    config = settings()
    if config.text_provider == "comprehend":
        from chalicelib.analysis.aws_text import ComprehendTextAnalyser

        return ComprehendTextAnalyser(
            aws_client("comprehend"), capabilities=config.text_capabilities
        )
    from chalicelib.analysis.local_text import LocalTextAnalyser
    from chalicelib.analysis.sentiment import local_sentiment

    return _maybe_faulty("text", LocalTextAnalyser(local_sentiment(config.local_sentiment)))


@_cached
def face_gallery() -> KnownFaces:
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


@_cached
def image_analyser() -> ImageAnalyser:
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
    from chalicelib.analysis.model_worker import shared_worker

    # Locally the models share a process with the webhook: a worker process bounds them.
    # A Lambda (the lite profile) is already that process.
    models = shared_worker() if config.backend == "local" else None
    analyser = LocalImageAnalyser(blob_store().get, face_gallery(), models=models)
    return _maybe_faulty("image", analyser)


@_cached
def conversation() -> Conversation:
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


@_cached
def poster() -> Poster:
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
    return XPoster(
        XClient(credentials, timeout=config.http_timeout_seconds, base_url=config.x_api_base_url)
    )


@_cached
def reply_lookup() -> ReplyLookup:
    """Where egress looks up a reply an interrupted attempt may have posted: the dry-run
    outbox locally, X itself otherwise (chalicelib/egress/lookup.py)."""
    config = settings()
    if config.backend == "local" and not config.live_replies:
        from chalicelib.egress.outbox import DryRunOutbox

        return DryRunOutbox(config.home / "outbox")
    from chalicelib.egress.lookup import x_reply_lookup

    return x_reply_lookup()


@_cached
def alert_sink() -> AlertSink:
    from chalicelib import alert_sinks

    if settings().backend == "aws":
        return alert_sinks.SnsAlertSink(aws_client("sns"), settings().alert_topic_arn)
    return alert_sinks.LocalAlertSink(settings().home / "alerts.jsonl")


@_cached
def guard_store() -> GuardStore:
    """The loop guards' counters: DynamoDB on AWS, SQLite under MAGPIE_HOME locally."""
    from chalicelib.egress import guards

    if settings().backend == "aws":
        return guards.DynamoDbGuardStore(aws_client("dynamodb"), settings().guard_table)
    return guards.SqliteGuardStore(settings().home / "guards.sqlite3")


@_cached
def reply_idempotency() -> IdempotencyStore:
    """Egress's ledger of replies: idempotency as above, kept for REPLY_MEMORY_DAYS rather
    than a week, so that replaying any archive we keep never answers a message twice. Its
    own persistence layer: Powertools fixes a layer's TTL the first time it is used."""
    return _idempotency_store(settings().reply_memory_days * 24 * 3600)


def reset() -> None:
    """Forget every cached adapter and setting (tests, and `magpie` switching MAGPIE_HOME)."""
    from chalicelib.config import reset_settings
    from chalicelib.secrets import reset_secret_cache

    for cache_clear in _CACHES:
        cache_clear()
    reset_settings()
    reset_secret_cache()
    # Powertools caches fetched secrets for max_age across calls; forget them too.
    if "aws_lambda_powertools.utilities.parameters" in sys.modules:
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()  # type: ignore[no-untyped-call]


# --- fault injection (reliability tests; chalicelib/faults.py) ------------------------------


def _maybe_faulty(port: str, adapter: T) -> T:
    """The local adapter, wrapped to fail at random when MAGPIE_FAULTS is set (never on AWS)."""
    if not settings().env.get("MAGPIE_FAULTS"):
        return adapter
    from chalicelib import faults

    # A transparent proxy: it answers every call of the port, as the adapter it wraps.
    return cast(T, faults.wrap(port, adapter))
