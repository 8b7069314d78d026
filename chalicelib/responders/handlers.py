"""The responders: turn one MESSAGE_ANALYSED into one SEND_TWEET (or a REPLY_SKIPPED).

Text responder: a message without images is answered by the conversational bot (Lex V2 on
AWS, the local intent matcher otherwise), asked with the text minus @mentions and URLs,
unless the message is better answered in our own words: one that raised the negative alert
gets a short acknowledgement that a person will look (the alert has gone out on the same
rule), and one whose photos could not be opened is told which and why, instead of being
asked for a photo. The words are bot.json's `replies`.
Image responder: each recognised person is boxed and named on the photo (`annotate`), the
annotated photos are stored in the blob store, and the reply names everyone recognised.

Both answer a mention with a reply to it and a direct message with a direct message. They
do no delivery and no deduplication: egress posts each message's reply at most once, so a
redelivered MESSAGE_ANALYSED may publish its SEND_TWEET again harmlessly.

Outcomes of bad input: a detail that does not fit MessageAnalysed raises ContractError and
a missing original image raises BlobNotFound (the bus retries, then parks it for replay);
what cannot be answered for good is published as REPLY_SKIPPED with the reason.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chalicelib import backend
from chalicelib.config import settings
from chalicelib.events import (
    ANALYSIS,
    MENTION,
    RESPONDERS,
    AnalysedImage,
    MessageAnalysed,
    OutgoingEvent,
    RejectedMedia,
    ReplySkipped,
    SendTweet,
)
from chalicelib.media_types import EXTENSION_BY_MIME, sniff
from chalicelib.publishing import publish
from chalicelib.responders.annotate import (
    MAX_REPLY_CHARS,
    annotate,
    is_explicit,
    reply_text_for_people,
)
from chalicelib.responders.bot_definition import (
    FALLBACK_INTENT,
    BotDefinition,
    load_bot_definition,
)

log = logging.getLogger(__name__)

MAX_IMAGES = 4  # X attaches at most 4 photos to a post; more are not annotated
IMAGE_INTENT = "ImageAnnotation"
NEGATIVE_INTENT = "NegativeAcknowledgement"  # our own answers, not Lex intents
UNREADABLE_INTENT = "UnreadablePhotos"
# Reasons a responder leaves a message unanswered (REPLY_SKIPPED.Reason).
NOTHING_TO_SAY = "bot_had_nothing_to_say"
EXPLICIT_IMAGE = "explicit_image"
NO_IMAGES = "no_images"
# A photo fetched but not looked at for faces (its analysis failed): bot.json's mediaReasons.
NOT_ANALYSED = "not_analysed"
FACE_CAPABILITIES = ("faces", "image")  # "image": the whole photo's analysis failed

_URL = re.compile(r"(?i)\b(?:https?://|www\.)\S+")
_MENTION = re.compile(r"(?<![\w@])@\w+")
_SPACE = re.compile(r"\s+")


def respond_to_text(detail: dict) -> SendTweet | ReplySkipped:
    """Answer a message without images with the conversational bot; publish the outcome."""
    message = MessageAnalysed.from_detail(detail)
    bot = load_bot_definition()
    if raises_negative_alert(detail):
        return _publish_reply(message, bot.replies["negative"], intent=NEGATIVE_INTENT)
    if message.Analysis.RejectedMedia:
        text = unreadable_photos_text(bot, message.Analysis.RejectedMedia, total=None)
        return _publish_reply(message, text, intent=UNREADABLE_INTENT)
    question = strip_mentions_and_urls(message.Text)
    if question:
        answer = backend.conversation().ask(question, session_id=message.Twitter.UserId)
        intent, text = str(answer.get("Intent", "")), str(answer.get("Message", "")).strip()
    else:
        # Only handles and links (e.g. a bare "@bot"): Lex refuses empty text, and the
        # helpful answer to an empty question is what the bot can do.
        intent, text = FALLBACK_INTENT, bot.help_message
    if not text:
        log.warning("the bot had nothing to say to %s (intent %s)", message.MessageId, intent)
        return _publish_skip(message, NOTHING_TO_SAY)
    return _publish_reply(message, text, intent=intent)


def respond_to_images(detail: dict) -> SendTweet | ReplySkipped:
    """Name the people in a message's photos, on the photos and in words; publish it."""
    message = MessageAnalysed.from_detail(detail)
    images = message.Analysis.Images[:MAX_IMAGES]
    if len(message.Analysis.Images) > MAX_IMAGES:
        log.info(
            "%s has %d images; the first %d are answered",
            message.MessageId,
            len(message.Analysis.Images),
            MAX_IMAGES,
        )
    if not images:
        return _publish_skip(message, NO_IMAGES)
    safe = [image for image in images if not is_explicit(image.Analysis.ModerationLabels)]
    if not safe:
        # Nothing we may show or talk about: never echo (or name people in) such an image.
        log.info("%s: every image carries explicit moderation labels", message.MessageId)
        return _publish_skip(message, EXPLICIT_IMAGE)
    # A photo whose face search failed was not looked at: "I recognised nobody" would be
    # untrue for it, so it is told apart, like a photo that could not be fetched.
    unchecked = _faces_not_checked(message)
    checked = [image for image in safe if image.Key not in unchecked]
    unreadable = [
        *message.Analysis.RejectedMedia,
        *(RejectedMedia(Url=i.Url, Reason=NOT_ANALYSED) for i in images if i.Key in unchecked),
    ]
    bot = load_bot_definition()
    total = len(message.Analysis.Images) + len(message.Analysis.RejectedMedia)
    if not checked:
        text = unreadable_photos_text(bot, unreadable, total=total)
        return _publish_reply(message, text, intent=UNREADABLE_INTENT)
    names = [face.get("Name", "") for image in checked for face in image.Analysis.CelebrityFaces]
    keys = [key for image in checked if (key := _annotated_key_if_named(image)) is not None]
    text = reply_text_for_people(names)
    if unreadable:
        note = unreadable_photos_text(bot, unreadable, total=total, partly=True)
        if len(text) + 1 + len(note) <= MAX_REPLY_CHARS:  # the names matter more than the note
            text = f"{text} {note}"
    return _publish_reply(message, text, intent=IMAGE_INTENT, keys=keys)


def _faces_not_checked(message: MessageAnalysed) -> set[str]:
    """Keys of the photos whose face search (or whole analysis) failed."""
    return {
        error.Image
        for error in message.Analysis.Errors
        if error.Image and error.Capability in FACE_CAPABILITIES
    }


@lru_cache(maxsize=1)
def _negative_alert_pattern() -> Any:  # compiled once, on first use
    from chalicelib.alerts import ALERT_PATTERNS
    from chalicelib.bus.pattern import compile_pattern

    return compile_pattern(ALERT_PATTERNS["negative"])


def raises_negative_alert(detail: dict) -> bool:
    """True when this MESSAGE_ANALYSED matches the negative alert's rule, so an alert has
    gone out for it: the very pattern the SNS rule and the local alert target use."""
    event = {"source": ANALYSIS, "detail-type": MessageAnalysed.DETAIL_TYPE, "detail": detail}
    return _negative_alert_pattern().matches(event)


def unreadable_photos_text(
    bot: BotDefinition, rejected: list[RejectedMedia], *, total: int | None, partly: bool = False
) -> str:
    """Which photos could not be opened and why, in bot.json's words. `total` is how many
    photos the message had (None: only the rejected ones)."""
    count, total = len(rejected), total or len(rejected)
    if total == 1:
        photos = bot.replies["photosOne"]
    elif count == total:
        photos = bot.replies["photosAll"].format(count=count)
    else:
        photos = bot.replies["photosSome"].format(count=count, total=total)
    reasons = dict.fromkeys(bot.media_reason(r.Reason) for r in rejected)
    template = bot.replies["partlyUnreadablePhotos" if partly else "unreadablePhotos"]
    return template.format(photos=photos, why="; ".join(reasons))


def strip_mentions_and_urls(text: str) -> str:
    """The question in a post: without @handles and links, whitespace collapsed."""
    return _SPACE.sub(" ", _MENTION.sub(" ", _URL.sub(" ", text))).strip()


@dataclass(frozen=True)
class _Annotated:
    data: bytes
    content_type: str
    extension: str


def _annotated_key_if_named(image: AnalysedImage) -> str | None:
    """Annotate and store a photo in which someone was recognised; returns its key.

    A photo with nobody recognised is not sent back (there is nothing drawn on it), and a
    photo Pillow cannot read is left out of the reply rather than failing it."""
    faces = image.Analysis.CelebrityFaces
    if not faces:
        return None
    from PIL import UnidentifiedImageError

    try:
        drawn = _annotate(image)
    except UnidentifiedImageError:
        log.warning("cannot read %s as an image; replying without it", image.Key)
        return None
    key = annotated_key(image.Key, drawn.extension)
    backend.blob_store().put(key, drawn.data, drawn.content_type)
    return key


def _annotate(image: AnalysedImage) -> _Annotated:
    original = backend.blob_store().get(image.Key)
    data = annotate(
        original,
        image.Analysis.CelebrityFaces,
        image.Analysis.UnrecognizedFaces,
        blur_unknown=settings().blur_unknown_faces,
    )
    # annotate() writes PNG only for inputs with transparency, JPEG otherwise.
    content_type = sniff(data) or "image/jpeg"
    return _Annotated(data, content_type, EXTENSION_BY_MIME[content_type])


def annotated_key(original_key: str, extension: str) -> str:
    """media/2026/07/15/<id>/0.jpg -> annotated/2026/07/15/<id>/0.<extension>: deterministic,
    so a redelivered message overwrites its own annotated photo instead of adding another."""
    name_start, dot = original_key.rfind("/") + 1, original_key.rfind(".")
    stem = original_key[:dot] if dot > name_start else original_key
    return f"annotated/{stem.removeprefix('media/')}.{extension}"


def _publish_reply(
    message: MessageAnalysed, text: str, *, intent: str, keys: list[str] | None = None
) -> SendTweet:
    keys = keys or []
    command = SendTweet(
        Text=text,
        ReplyToUserId=message.Twitter.UserId,
        MessageId=message.MessageId,
        Kind=message.Kind,
        # A mention is answered in its thread; a direct message by direct message.
        ReplyToTweetId=message.Twitter.TweetId if message.Kind == MENTION else None,
        ImageKey=keys[0] if keys else None,
        ImageKeys=keys,
        InReplyToTweetId=message.Twitter.InReplyToTweetId if message.Kind == MENTION else None,
        Author=message.Author,
        Intent=intent,
        ReceivedAt=message.ReceivedAt,
        ExcludeReplyUserIds=list(message.Twitter.MentionedUserIds)
        if message.Kind == MENTION
        else [],
    )
    publish([command.to_event()])
    log.info("%s %s answered (%s, %d image(s))", message.Kind, message.MessageId, intent, len(keys))
    return command


def _publish_skip(message: MessageAnalysed, reason: str) -> ReplySkipped:
    skipped = ReplySkipped(
        MessageId=message.MessageId,
        Kind=message.Kind,
        Reason=reason,
        ReplyToUserId=message.Twitter.UserId,
    )
    # ReplySkipped's default source is egress; the responders publish their own.
    publish([OutgoingEvent(RESPONDERS, ReplySkipped.DETAIL_TYPE, skipped.to_detail())])
    return skipped
