"""The responders: turn one MESSAGE_ANALYSED into one SEND_TWEET (or a REPLY_SKIPPED).

Text responder: a message without images is answered by the conversational bot (Lex V2 on
AWS, the local intent matcher otherwise), asked with the text minus @mentions and URLs.
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

from chalicelib import backend
from chalicelib.bus import publish
from chalicelib.config import settings
from chalicelib.events import (
    MENTION,
    RESPONDERS,
    AnalysedImage,
    MessageAnalysed,
    OutgoingEvent,
    ReplySkipped,
    SendTweet,
)
from chalicelib.media_types import EXTENSION_BY_MIME, sniff
from chalicelib.responders.annotate import annotate, is_explicit, reply_text_for_people
from chalicelib.responders.bot_definition import FALLBACK_INTENT, load_bot_definition

log = logging.getLogger(__name__)

MAX_IMAGES = 4  # X attaches at most 4 photos to a post; more are not annotated
IMAGE_INTENT = "ImageAnnotation"
# Reasons a responder leaves a message unanswered (REPLY_SKIPPED.Reason).
NOTHING_TO_SAY = "bot_had_nothing_to_say"
EXPLICIT_IMAGE = "explicit_image"
NO_IMAGES = "no_images"

_URL = re.compile(r"(?i)\b(?:https?://|www\.)\S+")
_MENTION = re.compile(r"(?<![\w@])@\w+")
_SPACE = re.compile(r"\s+")


def respond_to_text(detail: dict) -> SendTweet | ReplySkipped:
    """Answer a message without images with the conversational bot; publish the outcome."""
    message = MessageAnalysed.from_detail(detail)
    question = strip_mentions_and_urls(message.Text)
    if question:
        answer = backend.conversation().ask(question, session_id=message.Twitter.UserId)
        intent, text = str(answer.get("Intent", "")), str(answer.get("Message", "")).strip()
    else:
        # Only handles and links (e.g. a bare "@bot"): Lex refuses empty text, and the
        # helpful answer to an empty question is what the bot can do.
        intent, text = FALLBACK_INTENT, load_bot_definition().help_message
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
    names = [face.get("Name", "") for image in safe for face in image.Analysis.CelebrityFaces]
    keys = [key for image in safe if (key := _annotated_key_if_named(image)) is not None]
    return _publish_reply(message, reply_text_for_people(names), intent=IMAGE_INTENT, keys=keys)


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
