"""Account Activity and X Activity deliveries: raw events (fan-out) and MESSAGE_RECEIVED (ACL).

Both formats are read as X documents them (docs.x.com, "Account Activity API" introduction and
"X Activity API" event payloads; copies in tests/fixtures/x-docs/).

Fan-out: nothing X sends is dropped. Every Account Activity item becomes one raw event whose
detail is the item unchanged; an X Activity delivery becomes one raw event whose detail is its
`data` unchanged. Types we do not model (and types X adds later) become `TWITTER_ACTIVITY`,
with the type kept in the detail's `event_type`.

Anti-corruption layer: only what the bot should answer becomes a `MessageReceived`: mentions,
replies to the bot, quotes that mention it, direct messages to it. Never its own posts or DMs,
reposts, users it blocked, or deliveries for another subscribed account. Anything else is
skipped with a reason. Texts are normalised here, once (chalicelib/ingress/text.py), and
ReceivedAt is the platform's own time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import InputError
from chalicelib.events import (
    DIRECT_MESSAGE,
    INGRESS,
    MENTION,
    MessageReceived,
    OutgoingEvent,
    TwitterIds,
    utc_now_iso,
)
from chalicelib.ingress import timestamps
from chalicelib.ingress.text import normalise_text

logger = logging.getLogger(__name__)

ACTIVITY = "TWITTER_ACTIVITY"

# A delivery of more items than this is refused (413): each item is one event, up to two
# with its message, and they are all published before X's 3-second deadline. X sends one
# X Activity event per delivery and small Account Activity batches.
MAX_ITEMS_PER_DELIVERY = 100

# Account Activity key -> detail-type, or {item "type" -> detail-type} for keys carrying several.
_AAA_TYPES: dict[str, str | dict[str, str]] = {
    "tweet_create_events": "TWITTER_TWEETED",
    "favorite_events": "TWITTER_FAVOURITED",
    "follow_events": {"follow": "TWITTER_FOLLOWED", "unfollow": "TWITTER_UNFOLLOWED"},
    "unfollow_events": "TWITTER_UNFOLLOWED",
    "block_events": {"block": "TWITTER_BLOCKED", "unblock": "TWITTER_UNBLOCKED"},
    "unblock_events": "TWITTER_UNBLOCKED",
    "mute_events": {"mute": "TWITTER_MUTED", "unmute": "TWITTER_UNMUTED"},
    "unmute_events": "TWITTER_UNMUTED",
    "direct_message_events": "TWITTER_DM_RECEIVED",
    "direct_message_indicate_typing_events": "TWITTER_DM_TYPING",
    "direct_message_mark_read_events": "TWITTER_DM_MARKED_READ",
    "tweet_delete_events": "TWITTER_DELETED",
}
# Keys that describe the delivery rather than carry events (the AAA object table).
_ENVELOPE_KEYS = {"for_user_id", "user_has_blocked", "is_blocked_by", "apps", "users"}

# X Activity event type -> the detail-type of the same activity in Account Activity.
_XAA_TYPES = {
    "post.create": "TWITTER_TWEETED",
    "post.mention.create": "TWITTER_TWEETED",
    "post.reply.create": "TWITTER_TWEETED",
    "post.quote.create": "TWITTER_TWEETED",
    "post.repost.create": "TWITTER_TWEETED",
    "post.delete": "TWITTER_DELETED",
    "like.create": "TWITTER_FAVOURITED",
    "follow.follow": "TWITTER_FOLLOWED",
    "follow.unfollow": "TWITTER_UNFOLLOWED",
    "block.block": "TWITTER_BLOCKED",
    "block.unblock": "TWITTER_UNBLOCKED",
    "mute.mute": "TWITTER_MUTED",
    "mute.unmute": "TWITTER_UNMUTED",
    "dm.received": "TWITTER_DM_RECEIVED",
    "dm.sent": "TWITTER_DM_RECEIVED",
    "dm.indicate_typing": "TWITTER_DM_TYPING",
    "dm.read": "TWITTER_DM_MARKED_READ",
    "oauth.revoke": "TWITTER_PERMISSION_REVOKED",
}
_XAA_POSTS = {"post.create", "post.mention.create", "post.reply.create", "post.quote.create"}
_XAA_DMS = {"dm.received", "dm.sent"}


class UnsupportedPayload(InputError):
    """Valid JSON that is not a delivery at all (e.g. a list or a string)."""


class TooManyItems(InputError):
    """A delivery carrying more items than MAX_ITEMS_PER_DELIVERY."""


@dataclass
class Translation:
    raw: list[OutgoingEvent] = field(default_factory=list)
    messages: list[MessageReceived] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item id, reason)
    notes: list[str] = field(default_factory=list)


def translate(payload: Any, bot_user_id: str) -> Translation:
    """Turn one webhook delivery into raw events and the messages the bot should answer.

    Raises UnsupportedPayload (not an object), TooManyItems (over the bound) and
    InvalidTimestamp (a message's time that cannot be placed)."""
    if not isinstance(payload, dict):
        raise UnsupportedPayload("a delivery must be a JSON object")
    items = count_items(payload)
    if items > MAX_ITEMS_PER_DELIVERY:
        raise TooManyItems(f"delivery carries {items} items, limit {MAX_ITEMS_PER_DELIVERY}")
    data = _xaa_data(payload)
    if data is not None:
        return _translate_xaa(data, bot_user_id)
    return _translate_aaa(payload, bot_user_id)


def _xaa_data(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The `data` of an X Activity delivery; None for an Account Activity one."""
    data = payload.get("data")
    return data if isinstance(data, dict) and isinstance(data.get("event_type"), str) else None


def count_items(payload: dict[str, Any]) -> int:
    """How many events a delivery fans out to, counted before any is built."""
    data = _xaa_data(payload)
    if data is not None:
        dms = _obj(data.get("payload")).get("direct_message_events")
        return max(1, len(dms) if isinstance(dms, list) else 0)
    return sum(
        len(value) if isinstance(value, list) else 1
        for key, value in payload.items()
        if key not in _ENVELOPE_KEYS
    )


# --- Account Activity (v1.1 objects) ---------------------------------------------------


def _translate_aaa(payload: dict[str, Any], bot: str) -> Translation:
    result = Translation()
    for_user = _id(payload.get("for_user_id"))
    _aaa_fan_out(payload, for_user, result)
    foreign = f"delivery for another account ({for_user})" if for_user not in ("", bot) else ""
    for item in _list(payload.get("tweet_create_events")):
        tweet = _obj(item)
        _collect(result, foreign or _message_from_tweet(tweet, payload, bot), tweet.get("id_str"))
    users = _obj(payload.get("users"))
    for item in _list(payload.get("direct_message_events")):
        event = _obj(item)
        _collect(result, foreign or _message_from_dm(event, users, bot), event.get("id"))
    return result


def _aaa_fan_out(payload: dict[str, Any], for_user: str, result: Translation) -> None:
    for key, value in payload.items():
        if key in _ENVELOPE_KEYS:
            continue
        if key == "user_event" and isinstance(value, dict) and "revoke" in value:
            result.raw.append(_raw("TWITTER_PERMISSION_REVOKED", value))
        elif key in _AAA_TYPES and isinstance(value, list):
            result.raw.extend(_aaa_item_event(key, item, for_user) for item in value)
        else:
            result.notes.append(f"kept unmodelled Account Activity key {key!r} as {ACTIVITY}")
            result.raw.append(_aaa_activity(key, value, for_user))
    if not result.raw:
        result.notes.append(f"delivery without events kept as {ACTIVITY}")
        result.raw.append(_raw(ACTIVITY, {"event_type": None, "payload": payload}))


def _aaa_item_event(key: str, item: Any, for_user: str) -> OutgoingEvent:
    mapping = _AAA_TYPES[key]
    if isinstance(mapping, str):
        return _raw(mapping, item)
    detail_type = mapping.get(str(_obj(item).get("type", "")))
    return _raw(detail_type, item) if detail_type else _aaa_activity(key, item, for_user)


def _aaa_activity(key: str, value: Any, for_user: str) -> OutgoingEvent:
    """An Account Activity key or item we do not model, in the X Activity envelope's words
    so one query reads both formats."""
    detail: dict[str, Any] = {"event_type": key, "payload": value}
    if for_user:
        detail["for_user_id"] = for_user
    return _raw(ACTIVITY, detail)


def _message_from_tweet(
    tweet: dict[str, Any], payload: dict[str, Any], bot: str
) -> MessageReceived | str:
    """A MessageReceived, or the reason the post is not one."""
    user = _obj(tweet.get("user"))
    author = _id(user.get("id_str"))
    extended = _obj(tweet.get("extended_tweet"))
    if author == bot:
        return "own post"
    if "retweeted_status" in tweet:
        return "retweet"
    if _flag(payload.get("user_has_blocked")) or _flag(payload.get("is_blocked_by")):
        return "author is blocked by the bot"
    mentions = _v1_mentions(tweet, extended)
    mentioned = bot in mentions
    if not mentioned and _id(tweet.get("in_reply_to_user_id_str")) != bot:
        return "neither mentions nor replies to the bot"
    text = extended.get("full_text", tweet.get("full_text", tweet.get("text")))
    return _message(
        kind=MENTION,
        message_id=_id(tweet.get("id_str")),
        user_id=author,
        author=user.get("screen_name"),
        text=text,
        image_urls=_v1_photo_urls(tweet, extended),
        language=tweet.get("lang"),
        received_at=_first_time(
            (timestamps.from_epoch_ms, tweet.get("timestamp_ms")),
            (timestamps.from_v1, tweet.get("created_at")),
        ),
        in_reply_to_tweet_id=_id(tweet.get("in_reply_to_status_id_str")) or None,
        in_reply_to_user_id=_id(tweet.get("in_reply_to_user_id_str")) or None,
        mentioned_user_ids=mentions - {bot, author},
    )


def _v1_mentions(tweet: dict[str, Any], extended: dict[str, Any]) -> set[str]:
    holders = (_obj(tweet.get("entities")), _obj(extended.get("entities")))
    return {_id(_obj(m).get("id_str")) for h in holders for m in _list(h.get("user_mentions"))}


def _v1_photo_urls(tweet: dict[str, Any], extended: dict[str, Any]) -> list[str]:
    """Every photo: extended_entities holds all media (entities.media only the first)."""
    urls: list[str] = []
    for holder in (extended, tweet):
        for media in _list(_obj(holder.get("extended_entities")).get("media")):
            url = _obj(media).get("media_url_https")
            if _obj(media).get("type") == "photo" and isinstance(url, str) and url not in urls:
                urls.append(url)
    return urls


def _message_from_dm(
    event: dict[str, Any], users: dict[str, Any], bot: str
) -> MessageReceived | str:
    """One `message_create` event; both formats carry it (X Activity inside its payload)."""
    if event.get("type") != "message_create":
        return f"direct message event of type {event.get('type')!r}"
    create = _obj(event.get("message_create"))
    sender = _id(create.get("sender_id"))
    recipient = _id(_obj(create.get("target")).get("recipient_id"))
    if sender == bot:
        return "own direct message"
    if recipient and recipient != bot:
        return "direct message to another account"
    data = _obj(create.get("message_data"))
    media = _obj(_obj(data.get("attachment")).get("media"))
    photo = media.get("media_url_https") if media.get("type") == "photo" else None
    return _message(
        kind=DIRECT_MESSAGE,
        message_id=_id(event.get("id")),
        user_id=sender,
        author=_username(users.get(sender)),
        text=data.get("text"),
        image_urls=[photo] if isinstance(photo, str) else [],
        language=None,
        received_at=_first_time((timestamps.from_epoch_ms, event.get("created_timestamp"))),
    )


# --- X Activity API (v2 objects) ------------------------------------------------------


def _translate_xaa(data: dict[str, Any], bot: str) -> Translation:
    result = Translation()
    event_type = data["event_type"]
    detail_type = _XAA_TYPES.get(event_type, ACTIVITY)
    if detail_type == ACTIVITY:
        result.notes.append(f"kept X Activity event {event_type!r} as {ACTIVITY}")
    result.raw.append(_raw(detail_type, data))
    payload = _obj(data.get("payload"))
    filter_user = _id(_obj(data.get("filter")).get("user_id"))
    foreign = (
        f"delivery for another account ({filter_user})" if filter_user not in ("", bot) else ""
    )
    if event_type in _XAA_POSTS:
        includes = _obj(data.get("includes"))
        outcome = foreign or _message_from_post(event_type, payload, includes, bot)
        _collect(result, outcome, payload.get("id"))
    elif event_type in _XAA_DMS:
        events = _list(payload.get("direct_message_events"))
        if not events:
            result.skipped.append(("(no id)", f"{event_type} without direct_message_events"))
        users = _obj(payload.get("users"))
        for item in events:
            event = _obj(item)
            _collect(result, foreign or _message_from_dm(event, users, bot), event.get("id"))
    return result


def _message_from_post(
    event_type: str, post: dict[str, Any], includes: dict[str, Any], bot: str
) -> MessageReceived | str:
    author = _id(post.get("author_id"))
    references = [_obj(r) for r in _list(post.get("referenced_tweets"))]
    if author == bot:
        return "own post"
    if any(r.get("type") == "retweeted" for r in references):
        return "repost"
    mentions = {_id(_obj(m).get("id")) for m in _list(_obj(post.get("entities")).get("mentions"))}
    mentioned = bot in mentions
    # post.mention.create is sent for explicit mentions and post.reply.create for direct
    # replies to the bot; a quote (or a post.create) is answered only when it mentions it.
    if event_type not in ("post.mention.create", "post.reply.create") and not mentioned:
        return "does not mention the bot"
    replied_to = next((r.get("id") for r in references if r.get("type") == "replied_to"), None)
    text = _obj(post.get("note_tweet")).get("text", post.get("text"))
    return _message(
        kind=MENTION,
        message_id=_id(post.get("id")),
        user_id=author,
        author=_username(_find_user(includes, author)),
        text=text,
        image_urls=_v2_photo_urls(post, includes),
        language=post.get("lang"),
        received_at=_first_time((timestamps.from_iso, post.get("created_at"))),
        in_reply_to_tweet_id=_id(post.get("in_reply_to_tweet_id") or replied_to) or None,
        in_reply_to_user_id=_id(post.get("in_reply_to_user_id")) or None,
        mentioned_user_ids=mentions - {bot, author},
    )


def _find_user(includes: dict[str, Any], user_id: str) -> Any:
    return next(
        (u for u in _list(includes.get("users")) if _id(_user_fields(u).get("id")) == user_id),
        None,
    )


def _v2_photo_urls(post: dict[str, Any], includes: dict[str, Any]) -> list[str]:
    """X's media keys are strings; any other key (a list, an object) names no photo, and
    must not reach a dict lookup, where it would raise on every retry of the delivery."""
    keys = [k for k in _list(_obj(post.get("attachments")).get("media_keys")) if _is_key(k)]
    media = [_obj(m) for m in _list(includes.get("media"))]
    by_key = {m["media_key"]: m for m in media if _is_key(m.get("media_key"))}
    urls = [by_key.get(k, {}).get("url") for k in keys if by_key.get(k, {}).get("type") == "photo"]
    return list(dict.fromkeys(u for u in urls if isinstance(u, str)))


def _is_key(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


# --- the message, built once -------------------------------------------------------------


def _message(
    *,
    kind: str,
    message_id: str,
    user_id: str,
    author: Any,
    text: Any,
    image_urls: list[str],
    language: Any,
    received_at: str,
    in_reply_to_tweet_id: str | None = None,
    in_reply_to_user_id: str | None = None,
    mentioned_user_ids: set[str] | frozenset[str] = frozenset(),
) -> MessageReceived | str:
    """The one place a MessageReceived is made: refused (a reason) rather than published
    with an empty id, author or text."""
    if not message_id:
        return "no message id"
    if not user_id:
        return "no author id"
    if text is not None and not isinstance(text, str):
        return f"text is a {type(text).__name__}, not a string"
    text = normalise_text(text or "")
    if not text.strip() and not image_urls:
        return "no text and no media"
    is_dm = kind == DIRECT_MESSAGE
    return MessageReceived(
        Text=text,
        Author=normalise_text(author) if isinstance(author, str) and author else user_id,
        Twitter=TwitterIds(
            UserId=user_id,
            TweetId=None if is_dm else message_id,
            DirectMessageId=message_id if is_dm else None,
            InReplyToTweetId=in_reply_to_tweet_id,
            InReplyToUserId=in_reply_to_user_id,
            MentionedUserIds=sorted(m for m in mentioned_user_ids if m),
        ),
        MessageId=message_id,
        Kind=kind,
        ImageUrls=image_urls,
        Language=language if isinstance(language, str) and language else None,
        ReceivedAt=received_at,
    )


def _first_time(*candidates: tuple[Callable[[Any], Any], Any]) -> str:
    """The first time X gave (parsed by its reader); now only when X gave none."""
    for parse, value in candidates:
        if value is not None and value != "":
            return timestamps.iso_z(parse(value))
    return utc_now_iso()


# --- helpers ----------------------------------------------------------------------------


def _raw(detail_type: str, item: Any) -> OutgoingEvent:
    return OutgoingEvent(INGRESS, detail_type, item if isinstance(item, dict) else {"value": item})


def _collect(result: Translation, outcome: MessageReceived | str, item_id: Any) -> None:
    if isinstance(outcome, MessageReceived):
        result.messages.append(outcome)
    else:
        result.skipped.append((_id(item_id) or "(no id)", outcome))


def _flag(value: Any) -> bool:
    """X's boolean flags, in every spelling its examples use: true, "true", "false"... A value
    we cannot read counts as set: answering a blocked user is the worse mistake."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0")
    return value != 0 if isinstance(value, int | float) else True


def _id(value: Any) -> str:
    """An X id as a string; "" for absent, null or non-scalar values (never "None")."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _user_fields(user: Any) -> dict[str, Any]:
    """A user object, v1.1 or v2, bare or wrapped as {"data": {...}} (X Activity's users map)."""
    user = _obj(user)
    return _obj(user["data"]) if isinstance(user.get("data"), dict) else user


def _username(user: Any) -> str | None:
    fields = _user_fields(user)
    name = fields.get("username", fields.get("screen_name"))
    return name if isinstance(name, str) else None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
