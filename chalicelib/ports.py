"""The ports: small interfaces that every backend (aws, local, fake) implements.

Handlers and domain code depend on these Protocols only; `chalicelib.backend` picks the
adapters from `MAGPIE_BACKEND`. Shapes returned by the analysers follow Comprehend and
Rekognition (PascalCase keys) so the data lake keeps the reference's schema.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from chalicelib.events import OutgoingEvent

T = TypeVar("T")


class EventBus(Protocol):
    """Publishes envelopes durably. Returns only once every entry is accepted; raises
    `chalicelib.bus.PublishError` otherwise (after retrying failed entries)."""

    def put(self, events: Sequence[OutgoingEvent]) -> None: ...


class BlobStore(Protocol):
    """Media and annotated images: S3 on AWS, MAGPIE_HOME/media locally."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...


class IdempotencyStore(Protocol):
    """Runs `fn` at most once per key; a repeat returns the first call's result.

    If `fn` raises, the key is released so a retry can run it again."""

    def once(self, namespace: str, key: str, fn: Callable[[], T]) -> T: ...


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

    def ask(self, text: str, session_id: str) -> dict[str, Any]:
        """{"Intent": name, "Confidence": float, "Message": reply text}."""
        ...


class AlertSink(Protocol):
    def raise_alert(self, alert: dict[str, Any]) -> None: ...
