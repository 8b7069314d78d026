"""The event contract: every event on the bus, defined once, as a frozen dataclass.

Detail fields keep the reference's PascalCase names (its Glue schema and Athena queries
keep working); we add fields, never rename them. Each model is owned by its producer
(`SOURCE`) and has a JSON fixture under tests/fixtures/events/ that a test holds against it.

Plain dataclasses rather than pydantic: ingress imports this module on its cold path and
must stay fast and small.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Union

from chalicelib.errors import InputError

SCHEMA_VERSION = "1"

INGRESS = "magpie.ingress"
ANALYSIS = "magpie.analysis"
RESPONDERS = "magpie.responders"
EGRESS = "magpie.egress"

# One raw event per Account Activity item (the detail is the item unchanged) or per X Activity
# delivery (the detail is its `data` unchanged). TWITTER_ACTIVITY holds every type we do not
# model, with the type in the detail's `event_type`.
TWITTER_DETAIL_TYPES = (
    "TWITTER_TWEETED",
    "TWITTER_FAVOURITED",
    "TWITTER_FOLLOWED",
    "TWITTER_UNFOLLOWED",
    "TWITTER_BLOCKED",
    "TWITTER_UNBLOCKED",
    "TWITTER_MUTED",
    "TWITTER_UNMUTED",
    "TWITTER_PERMISSION_REVOKED",
    "TWITTER_DM_RECEIVED",
    "TWITTER_DM_TYPING",
    "TWITTER_DM_MARKED_READ",
    "TWITTER_DELETED",
    "TWITTER_ACTIVITY",
)

MENTION = "MENTION"
DIRECT_MESSAGE = "DIRECT_MESSAGE"


class ContractError(InputError):
    """A detail that does not fit its model: a missing field or a value of the wrong type."""


@dataclass(frozen=True)
class OutgoingEvent:
    """What a producer hands to the bus: the bus adds id, account, region and resources."""

    source: str
    detail_type: str
    detail: dict[str, Any]
    time: str = field(default_factory=lambda: utc_now_iso())


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Model:
    """Conversion between a frozen dataclass and its JSON detail.

    Each model declares SchemaVersion last itself: dataclass fields keep their declaration
    order (bases first), and the detail, the Glue columns and the fixtures all follow it."""

    DETAIL_TYPE: ClassVar[str] = ""
    SOURCE: ClassVar[str] = ""

    def to_detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = _drop_none(dataclasses.asdict(self))
        return detail

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> Any:
        return _build(cls, detail, cls.__name__)

    def to_event(self) -> OutgoingEvent:
        return OutgoingEvent(self.SOURCE, self.DETAIL_TYPE, self.to_detail())


def _drop_none(value: Any) -> Any:
    """Optional fields that are unset are left out of the JSON, as the reference did."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


@functools.cache
def _field_types(model: type) -> dict[str, Any]:
    """A model's resolved field types. Cached: resolving the string annotations compiles each
    one again, which was most of the webhook's own time per message (docs/PERFORMANCE.md)."""
    return typing.get_type_hints(model)


def _build(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _build(options[0], value, where)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ContractError(f"{where}: expected an object, got {type(value).__name__}")
        hints = _field_types(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in value:
                kwargs[f.name] = _build(hints[f.name], value[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ContractError(f"{where}: missing required field {f.name!r}")
        return tp(**kwargs)
    if origin is list:
        if not isinstance(value, list):
            raise ContractError(f"{where}: expected a list, got {type(value).__name__}")
        (item_type,) = typing.get_args(tp)
        return [_build(item_type, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ContractError(f"{where}: expected an object, got {type(value).__name__}")
        return value
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ContractError(f"{where}: expected {tp.__name__}, got {type(value).__name__}")
    return value


# --- magpie.ingress -------------------------------------------------------------------


@dataclass(frozen=True)
class TwitterIds:
    UserId: str
    TweetId: str | None = None
    DirectMessageId: str | None = None
    InReplyToTweetId: str | None = None
    InReplyToUserId: str | None = None
    # Everyone else the post tags (never the bot or the author): the reply leaves them out,
    # so one mention that tags many people does not make the bot mention them all.
    MentionedUserIds: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _MessageHeader(_Model):
    """What every event about one received message starts with."""

    Text: str
    Author: str
    Twitter: TwitterIds
    MessageId: str
    Kind: str


@dataclass(frozen=True)
class _Outcome(_Model):
    """What every event about the fate of one message's reply starts with."""

    MessageId: str
    Kind: str


@dataclass(frozen=True)
class MessageReceived(_MessageHeader):
    """A mention or direct message the bot should answer (the anti-corruption layer's output)."""

    DETAIL_TYPE: ClassVar[str] = "MESSAGE_RECEIVED"
    SOURCE: ClassVar[str] = INGRESS

    ImageUrls: list[str] = field(default_factory=list)
    Language: str | None = None
    ReceivedAt: str | None = None
    SchemaVersion: str = SCHEMA_VERSION


# --- magpie.analysis ------------------------------------------------------------------


@dataclass(frozen=True)
class ImageAnalysis:
    Labels: list[dict[str, Any]] = field(default_factory=list)
    TextDetections: list[dict[str, Any]] = field(default_factory=list)
    CelebrityFaces: list[dict[str, Any]] = field(default_factory=list)
    UnrecognizedFaces: list[dict[str, Any]] = field(default_factory=list)
    ModerationLabels: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class AnalysedImage:
    Key: str
    Url: str
    Analysis: ImageAnalysis


@dataclass(frozen=True)
class CapabilityError:
    """One capability that failed; the others still report."""

    Capability: str
    Error: str
    Image: str | None = None


@dataclass(frozen=True)
class RejectedMedia:
    Url: str
    Reason: str


@dataclass(frozen=True)
class Analysis:
    TextSentiment: str | None = None
    SentimentScore: dict[str, float] | None = None
    TextEntities: list[dict[str, Any]] = field(default_factory=list)
    KeyPhrases: list[dict[str, Any]] = field(default_factory=list)
    Language: str | None = None
    Images: list[AnalysedImage] = field(default_factory=list)
    RejectedMedia: list[RejectedMedia] = field(default_factory=list)
    Errors: list[CapabilityError] = field(default_factory=list)
    Provider: str | None = None


@dataclass(frozen=True)
class MessageAnalysed(_MessageHeader):
    DETAIL_TYPE: ClassVar[str] = "MESSAGE_ANALYSED"
    SOURCE: ClassVar[str] = ANALYSIS

    Analysis: Analysis
    Language: str | None = None
    ReceivedAt: str | None = None
    SchemaVersion: str = SCHEMA_VERSION


@dataclass(frozen=True)
class MessageAnalysisFailed(_MessageHeader):
    DETAIL_TYPE: ClassVar[str] = "MESSAGE_ANALYSIS_FAILED"
    SOURCE: ClassVar[str] = ANALYSIS

    Reason: str
    ReceivedAt: str | None = None
    SchemaVersion: str = SCHEMA_VERSION


# --- magpie.responders ----------------------------------------------------------------


@dataclass(frozen=True)
class SendTweet(_Model):
    """A command to egress: reply to one message, once."""

    DETAIL_TYPE: ClassVar[str] = "SEND_TWEET"
    SOURCE: ClassVar[str] = RESPONDERS

    Text: str
    ReplyToUserId: str
    MessageId: str
    Kind: str
    ReplyToTweetId: str | None = None
    ImageKey: str | None = None
    ImageKeys: list[str] = field(default_factory=list)
    # What the message itself replied to: egress's bot-to-bot thread-depth guard reads it.
    InReplyToTweetId: str | None = None
    Author: str | None = None
    Intent: str | None = None
    ReceivedAt: str | None = None
    # X's reply.exclude_reply_user_ids: the reply reaches the author only.
    ExcludeReplyUserIds: list[str] = field(default_factory=list)
    # The language the reply is written in (a primary subtag: "en", "fr", "ja").
    Language: str | None = None
    SchemaVersion: str = SCHEMA_VERSION


# --- magpie.egress (and guards) -------------------------------------------------------


@dataclass(frozen=True)
class TweetSent(_Outcome):
    DETAIL_TYPE: ClassVar[str] = "TWEET_SENT"
    SOURCE: ClassVar[str] = EGRESS

    ReplyToUserId: str
    Text: str
    SentId: str
    ReplyToTweetId: str | None = None
    MediaIds: list[str] = field(default_factory=list)
    DryRun: bool = False
    ReceivedAt: str | None = None
    SentAt: str | None = None
    # What X bills for answering the message (its delivery and this reply, x_prices.json);
    # unset for a reply found on X after a crash, already paid for by that attempt.
    XCostUsd: float | None = None
    SchemaVersion: str = SCHEMA_VERSION


@dataclass(frozen=True)
class TweetFailed(_Outcome):
    DETAIL_TYPE: ClassVar[str] = "TWEET_FAILED"
    SOURCE: ClassVar[str] = EGRESS

    Reason: str
    StatusCode: int | None = None
    SchemaVersion: str = SCHEMA_VERSION


@dataclass(frozen=True)
class ReplySkipped(_Outcome):
    """A message deliberately left unanswered, with the reason. Any guard may publish it,
    so the source is the guard's own (SOURCE is egress's default)."""

    DETAIL_TYPE: ClassVar[str] = "REPLY_SKIPPED"
    SOURCE: ClassVar[str] = EGRESS

    Reason: str
    ReplyToUserId: str | None = None
    SchemaVersion: str = SCHEMA_VERSION


MODELS: tuple[type[_Model], ...] = (
    MessageReceived,
    MessageAnalysed,
    MessageAnalysisFailed,
    SendTweet,
    TweetSent,
    TweetFailed,
    ReplySkipped,
)
