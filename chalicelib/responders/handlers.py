"""The responders: turn one MESSAGE_ANALYSED into one SEND_TWEET (or a REPLY_SKIPPED).

Text responder: a message without images is answered by the conversational bot (Lex V2 on
AWS, the local intent matcher otherwise), asked with the text minus @mentions and URLs,
unless the message is better answered in our own words: one that raised the negative alert
gets a short acknowledgement that a person will look (the alert has gone out on the same
rule), and one whose photos could not be opened is told which and why, instead of being
asked for a photo. The words are bot.json's `replies`.
Every reply is in the message's language when the bot speaks it (`languages`): the bot is
asked in that language's locale, and asked again in English when that locale did not
understand (a request made in English inside a message detected as, say, French); a
language the bot does not speak is answered in English after a clause saying so.
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

import dataclasses
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chalicelib import backend
from chalicelib.config import settings
from chalicelib.egress.text_fit import weighted_length
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
    ENGLISH,
    FALLBACK_INTENT,
    ReplyTexts,
)
from chalicelib.responders.languages import (
    LanguageChoice,
    choose_language,
    reply_texts,
    with_unspoken_clause,
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
    choice = choose_language(message_language(message))
    texts = reply_texts(choice.language)
    if raises_negative_alert(detail):
        return _publish_reply(message, texts.replies["negative"], NEGATIVE_INTENT, choice)
    if message.Analysis.RejectedMedia:
        text = unreadable_photos_text(texts, message.Analysis.RejectedMedia, total=None)
        return _publish_reply(message, text, UNREADABLE_INTENT, choice)
    question = strip_mentions_and_urls(message.Text)
    if question:
        intent, text, language = ask_bot(question, message.Twitter.UserId, choice)
        choice = dataclasses.replace(choice, language=language)
    else:
        # Only handles and links (e.g. a bare "@bot"): Lex refuses empty text, and the
        # helpful answer to an empty question is what the bot can do.
        intent, text = FALLBACK_INTENT, texts.help_message
    if not text:
        log.warning("the bot had nothing to say to %s (intent %s)", message.MessageId, intent)
        return _publish_skip(message, NOTHING_TO_SAY)
    return _publish_reply(message, text, intent, choice)


def message_language(message: MessageAnalysed) -> str | None:
    """The message's language as the analysis found it (X's own when X gave one)."""
    return message.Analysis.Language or message.Language


def ask_bot(question: str, session_id: str, choice: LanguageChoice) -> tuple[str, str, str]:
    """(intent, reply, the reply's language): the bot asked in the message's locale, and in
    English when that locale's confidence is too low for any intent. An intent English
    finds is answered in English (the request was made in English); when neither finds one,
    the help comes in the message's own language."""
    conversation = backend.conversation()
    answer = conversation.ask(question, session_id=session_id, locale=choice.locale)
    if choice.locale is None or _understood(answer):
        return (*_said(answer), choice.language)
    english = conversation.ask(question, session_id=session_id, locale=None)
    if _understood(english):
        log.info("locale %s found no intent; English found one", choice.locale)
        return (*_said(english), ENGLISH)
    return (*_said(answer), choice.language)


def _said(answer: dict[str, Any]) -> tuple[str, str]:
    return str(answer.get("Intent", "")), str(answer.get("Message", "")).strip()


def _understood(answer: dict[str, Any]) -> bool:
    # Both adapters already apply nluConfidenceThreshold (Lex, and the local matcher as Lex
    # does): below it, the intent is FallbackIntent.
    return answer.get("Intent") not in (None, "", FALLBACK_INTENT)


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
    choice = choose_language(message_language(message))
    texts = reply_texts(choice.language)
    total = len(message.Analysis.Images) + len(message.Analysis.RejectedMedia)
    if not checked:
        text = unreadable_photos_text(texts, unreadable, total=total)
        return _publish_reply(message, text, UNREADABLE_INTENT, choice)
    names = [face.get("Name", "") for image in checked for face in image.Analysis.CelebrityFaces]
    keys = [key for image in checked if (key := _annotated_key_if_named(image)) is not None]
    text = reply_text_for_people(names, texts)
    if unreadable:
        note = unreadable_photos_text(texts, unreadable, total=total, partly=True)
        # The names matter more than the note.
        if weighted_length(f"{text} {note}") <= MAX_REPLY_CHARS:
            text = f"{text} {note}"
    return _publish_reply(message, text, IMAGE_INTENT, choice, keys=keys)


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
    texts: ReplyTexts, rejected: list[RejectedMedia], *, total: int | None, partly: bool = False
) -> str:
    """Which photos could not be opened and why, in `texts`' words. `total` is how many
    photos the message had (None: only the rejected ones)."""
    count, total = len(rejected), total or len(rejected)
    if total == 1:
        photos = texts.replies["photosOne"]
    elif count == total:
        photos = texts.replies["photosAll"].format(count=count)
    else:
        photos = texts.replies["photosSome"].format(count=count, total=total)
    reasons = dict.fromkeys(texts.media_reason(r.Reason) for r in rejected)
    template = texts.replies["partlyUnreadablePhotos" if partly else "unreadablePhotos"]
    return template.format(photos=photos, why=texts.separators["reasons"].join(reasons))


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
    message: MessageAnalysed,
    text: str,
    intent: str,
    choice: LanguageChoice,
    *,
    keys: list[str] | None = None,
) -> SendTweet:
    keys = keys or []
    command = SendTweet(
        Text=with_unspoken_clause(text, choice),
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
        Language=choice.language,
    )
    publish([command.to_event()])
    log.info(
        "%s %s answered (%s, %s, %d image(s))",
        message.Kind,
        message.MessageId,
        intent,
        choice.language,
        len(keys),
    )
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
