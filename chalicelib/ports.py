"""The ports: small interfaces that every backend (aws, local, fake) implements.

Handlers and domain code depend on these Protocols only; `chalicelib.backend` picks the
adapters from `MAGPIE_BACKEND` and each of its factories returns one of these types, so the
type checker holds every adapter to its port (docs/ARCHITECTURE.md, "Ports and adapters").
Shapes returned by the analysers follow Comprehend and Rekognition (PascalCase keys) so the
data lake keeps the reference's schema.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from chalicelib.errors import UnavailableError
from chalicelib.events import DIRECT_MESSAGE, MENTION, OutgoingEvent

T = TypeVar("T")


class EventBus(Protocol):
    """Publishes envelopes durably. Returns only once every entry is accepted; raises
    `chalicelib.bus.PublishError` otherwise (after retrying failed entries)."""

    def put(self, events: Sequence[OutgoingEvent]) -> None: ...


class BlobStore(Protocol):
    """Media and annotated images: S3 on AWS, MAGPIE_HOME/media locally."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...


class IdempotencyInProgress(UnavailableError, RuntimeError):
    """The same key is being worked on right now by a live worker: wait, then try again."""


class IdempotencyUnavailable(UnavailableError, RuntimeError):
    """The idempotency store could not be read or written (a full disk, DynamoDB down)."""


class IdempotencyStore(Protocol):
    """Runs `fn` at most once per key; a repeat returns the first call's result.

    If `fn` raises, the key is released so a retry can run it again."""

    def once(self, namespace: str, key: str, fn: Callable[[], T], *, context: Any = None) -> T:
        """`context` is the Lambda context on AWS: an in-progress key then expires with it."""
        ...


class AnalysisExecutions(Protocol):
    """Which message each analysis execution analyses. Step Functions logs an Express
    execution's ending with the execution's ARN but not its input, so the workflow's first
    step records the message under the ARN for the ending's report to find."""

    def remember(self, execution: str, message: dict[str, Any], expires_at: int) -> None: ...

    def recall(self, execution: str) -> dict[str, Any] | None:
        """The message, or None if none was recorded or its record expired."""
        ...


class TextAnalyser(Protocol):
    """Comprehend-shaped text analysis. Each method is one capability, called separately
    so that one failing capability does not hide the others."""

    def sentiment(self, texts: Sequence[str], language: str) -> list[dict[str, Any]]:
        """Per text: {"Sentiment": "POSITIVE|NEGATIVE|NEUTRAL|MIXED",
        "SentimentScore": {"Positive", "Negative", "Neutral", "Mixed"}}."""
        ...

    def entities(self, text: str, language: str) -> list[dict[str, Any]]:
        """[{"Text", "Type", "Score", "BeginOffset", "EndOffset"}], Comprehend types."""
        ...

    def key_phrases(self, text: str, language: str) -> list[dict[str, Any]]:
        """[{"Text", "Score", "BeginOffset", "EndOffset"}]."""
        ...

    def detect_language(self, text: str) -> dict[str, Any]:
        """{"LanguageCode": "en", "Score": 0.98}."""
        ...


class ImageAnalyser(Protocol):
    """Rekognition-shaped image analysis of an image held in the blob store under `key`.

    `waits_on_network`: each capability is a remote request, so the analysis step may ask
    for them at the same time, from several threads."""

    waits_on_network: bool

    def labels(self, key: str) -> list[dict[str, Any]]:
        """[{"Name", "Confidence", "Source"?}]."""
        ...

    def text(self, key: str) -> list[dict[str, Any]]:
        """[{"DetectedText", "Type": "LINE", "Confidence", "Geometry": {"BoundingBox"}}]."""
        ...

    def faces(self, key: str) -> dict[str, list[dict[str, Any]]]:
        """{"CelebrityFaces": [{"Name", "Id", "MatchConfidence", "Face": {"BoundingBox",
        "Confidence"}}], "UnrecognizedFaces": [{"BoundingBox", "Confidence"}]}.
        BoundingBox = {"Width", "Height", "Left", "Top"} as ratios of the image size."""
        ...

    def moderation(self, key: str) -> list[dict[str, Any]]:
        """[{"Name", "Confidence", "ParentName"}], Rekognition's moderation taxonomy."""
        ...


class Conversation(Protocol):
    """The conversational bot (Lex V2 on AWS, an intent matcher locally)."""

    def ask(self, text: str, session_id: str, locale: str | None = None) -> dict[str, Any]:
        """{"Intent": name, "Confidence": float, "Message": reply text}, the bot asked in
        `locale` (a Lex locale id from bot.json; None: the adapter's English one)."""
        ...


class AlertSink(Protocol):
    def raise_alert(self, alert: dict[str, Any], key: str | None = None) -> None:
        """Raise `alert`; with a `key`, an adapter that can raises it once per key, even
        when a crash makes its caller raise it again."""
        ...


class KnownFaces(Protocol):
    """The known-faces gallery: a JSON file under MAGPIE_HOME/faces, or on AWS a local copy
    of the one in FACE_GALLERY_BUCKET. The image analyser matches against it; `magpie faces`
    enrols and removes people."""

    @property
    def path(self) -> Path: ...

    @property
    def location(self) -> str:
        """Where the gallery lives, for messages to the operator."""
        ...

    def match(self, embedding: Sequence[float]) -> tuple[str, float] | None:
        """The nearest enrolled person and the MatchConfidence, or None if nobody is near."""
        ...

    def id_of(self, name: str) -> str: ...

    def names(self) -> list[str]: ...

    def add(self, name: str, images: Sequence[bytes]) -> int:
        """Enrol `name` from images showing one face each; the number of faces enrolled."""
        ...

    def remove(self, name: str) -> bool:
        """Forget `name`; False if nobody of that name was enrolled."""
        ...


@dataclass(frozen=True)
class ReplyRequest:
    """One reply to deliver. `images` are (bytes, media type) pairs, e.g. (b"...", "image/jpeg");
    they are left out of repr so a log line never carries image bytes."""

    kind: str  # MENTION | DIRECT_MESSAGE
    text: str
    reply_to_user_id: str
    reply_to_tweet_id: str | None
    images: list[tuple[bytes, str]] = field(default_factory=list, repr=False)
    # The other users in the thread (those the message mentions): X would prefix a post
    # reply with them all; they are left out so that the reply reaches only its author.
    exclude_reply_user_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in (MENTION, DIRECT_MESSAGE):
            raise ValueError(f"unknown reply kind {self.kind!r}")
        if self.kind == MENTION and not self.reply_to_tweet_id:
            raise ValueError("a MENTION reply needs reply_to_tweet_id")
        if not self.text and not self.images:
            raise ValueError("a reply needs text or an image")


@dataclass(frozen=True)
class PostResult:
    """`sent_id` is the new post id (MENTION) or dm_event_id (DIRECT_MESSAGE); `location` is
    where a dry run wrote the reply."""

    sent_id: str
    media_ids: list[str]
    dry_run: bool
    location: str | None = None


class Poster(Protocol):
    """Delivers one reply: X (`XPoster`) or the local dry-run outbox (`DryRunOutbox`)."""

    def post(self, request: ReplyRequest) -> PostResult: ...


class ReplyLookup(Protocol):
    """Finds a reply already out (the outbox, or X): what an interrupted attempt posted."""

    def find_reply(self, request: ReplyRequest, since: float) -> PostResult | None: ...


class GuardStore(Protocol):
    """The loop guards' counters: DynamoDB on AWS, SQLite under MAGPIE_HOME locally."""

    def take_slot(self, bucket: str, limit: int, expires_at: int) -> bool:
        """Atomically count one more reply in `bucket` if it holds fewer than `limit`."""
        ...

    def give_back_slot(self, bucket: str) -> None:
        """Undo one `take_slot` (the reply was not posted)."""
        ...

    def remember_depth(self, post_id: str, depth: int, expires_at: int) -> None: ...

    def depth_of(self, post_id: str) -> int | None:
        """The depth of one of our own posts, or None if it is not ours (or forgotten)."""
        ...

    def mark_intent(self, reply_key: str, at: float, expires_at: int) -> None:
        """Record, durably and before posting, that the reply `reply_key` is about to go out."""
        ...

    def intent_at(self, reply_key: str) -> float | None:
        """When an attempt last recorded its intent to post `reply_key`, if one did."""
        ...

    def forget_intent(self, reply_key: str) -> None:
        """X answered that attempt with an error: nothing went out, nothing to look up."""
        ...

    def take_spend(self, day: str, micro_usd: int, limit_micro_usd: int, expires_at: int) -> bool:
        """Atomically add `micro_usd` to the day's X spend if it stays within the limit."""
        ...

    def give_back_spend(self, day: str, micro_usd: int) -> None:
        """Undo one `take_spend` (the reply was not posted)."""
        ...

    def spend_of(self, day: str) -> int:
        """The day's X spend counted so far, in micro-dollars."""
        ...
