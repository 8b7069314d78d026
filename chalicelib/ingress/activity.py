"""Account Activity and X Activity deliveries: raw events (fan-out) and MESSAGE_RECEIVED (ACL).

Fan-out publishes one raw event per array item, detail = the item unchanged. The
anti-corruption layer turns only what the bot should answer into `MessageReceived`:
mentions (not the bot's own, not retweets, not from a user the bot blocked) and direct
messages to the bot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
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

logger = logging.getLogger(__name__)

# Account Activity key -> detail-type (or a function of the item for keys carrying several).
_ARRAY_KEYS: dict[str, Any] = {
    "tweet_create_events": "TWITTER_TWEETED",
    "favorite_events": "TWITTER_FAVOURITED",
    "follow_events": lambda item: {
        "follow": "TWITTER_FOLLOWED",
        "unfollow": "TWITTER_UNFOLLOWED",
    }.get(item.get("type", "")),
    "block_events": lambda item: {"block": "TWITTER_BLOCKED", "unblock": "TWITTER_UNBLOCKED"}.get(
        item.get("type", "")
    ),
    "mute_events": lambda item: {"mute": "TWITTER_MUTED", "unmute": "TWITTER_UNMUTED"}.get(
        item.get("type", "")
    ),
    "direct_message_events": "TWITTER_DM_RECEIVED",
    "direct_message_indicate_typing_events": "TWITTER_DM_TYPING",
    "direct_message_mark_read_events": "TWITTER_DM_MARKED_READ",
    "tweet_delete_events": "TWITTER_DELETED",
}
_ENVELOPE_KEYS = {"for_user_id", "user_has_blocked", "apps", "users", "source"}

# X Activity API event types -> the raw detail-type of the same activity.
_XAA_TYPES = {
    "post.mention.create": "TWITTER_TWEETED",
    "post.create": "TWITTER_TWEETED",
    "post.delete": "TWITTER_DELETED",
    "dm.received": "TWITTER_DM_RECEIVED",
    "dm.sent": "TWITTER_DM_RECEIVED",
    "follow.follow": "TWITTER_FOLLOWED",
    "follow.unfollow": "TWITTER_UNFOLLOWED",
    "like.create": "TWITTER_FAVOURITED",
}


class UnsupportedPayload(InputError):
    """Valid JSON that is not a delivery we understand (e.g. a list, or no known keys)."""


@dataclass
class Translation:
    raw: list[OutgoingEvent] = field(default_factory=list)
    messages: list[MessageReceived] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item id, reason)
    notes: list[str] = field(default_factory=list)


def translate(payload: Any, bot_user_id: str) -> Translation:
    """Turn one webhook delivery into raw events and the messages the bot should answer."""
    if not isinstance(payload, dict):
        raise UnsupportedPayload("a delivery must be a JSON object")
    try:
        if isinstance(payload.get("data"), dict) and "event_type" in payload["data"]:
            return _translate_xaa(payload["data"], bot_user_id)
        return _translate_account_activity(payload, bot_user_id)
    except (AttributeError, TypeError, KeyError, IndexError) as exc:
        # The readers below follow X's documented shapes; a signed body that breaks them
        # (a null item, an array where an object belongs) is refused here, where its shape
        # is known, rather than by every caller.
        raise UnsupportedPayload(f"unexpected delivery shape ({type(exc).__name__})") from exc


# --- Account Activity (v1.1-style) ----------------------------------------------------


def _translate_account_activity(payload: dict[str, Any], bot_user_id: str) -> Translation:
    result = Translation()
    for_user = str(payload.get("for_user_id", ""))
    if for_user and for_user != bot_user_id:
        raise UnsupportedPayload("for_user_id is not this bot's user id")
    known = False
    for key, value in payload.items():
        if key in _ENVELOPE_KEYS:
            continue
        if key == "replay_job_status":
            known = True
            result.notes.append(f"replay_job_status: {_short(value)}")
            continue
        if key == "user_event":
            known = True
            result.raw.append(_raw("TWITTER_PERMISSION_REVOKED", value))
            continue
        if key not in _ARRAY_KEYS or not isinstance(value, list):
            result.notes.append(f"ignored unknown key {key!r}")
            continue
        known = True
        for item in value:
            detail_type = _detail_type(key, item)
            if detail_type is None:
                result.notes.append(f"ignored {key} item of type {item.get('type')!r}")
                continue
            result.raw.append(_raw(detail_type, item))
    if not known:
        raise UnsupportedPayload("no Account Activity events in the delivery")
    for item in payload.get("tweet_create_events") or []:
        _collect(result, _mention_from_tweet(item, payload, bot_user_id), item.get("id_str"))
    for item in payload.get("direct_message_events") or []:
        _collect(result, _message_from_dm(item, payload, bot_user_id), item.get("id"))
    return result


def _detail_type(key: str, item: Any) -> str | None:
    mapping = _ARRAY_KEYS[key]
    if not isinstance(item, dict):
        return None
    return mapping(item) if callable(mapping) else mapping


def _raw(detail_type: str, item: Any) -> OutgoingEvent:
    return OutgoingEvent(INGRESS, detail_type, item if isinstance(item, dict) else {"value": item})


def _collect(result: Translation, outcome: MessageReceived | str, item_id: Any) -> None:
    if isinstance(outcome, MessageReceived):
        result.messages.append(outcome)
    else:
        result.skipped.append((str(item_id), outcome))


def _mention_from_tweet(
    tweet: dict[str, Any], payload: dict[str, Any], bot: str
) -> MessageReceived | str:
    """A MessageReceived, or the reason the post is not one."""
    user = tweet.get("user") or {}
    if str(user.get("id_str", "")) == bot:
        return "own post"
    if "retweeted_status" in tweet:
        return "retweet"
    if payload.get("user_has_blocked") is True:
        return "author is blocked by the bot"
    extended = tweet.get("extended_tweet") or {}
    if not _mentions_bot(tweet, extended, bot):
        return "does not mention the bot"
    text = extended.get("full_text") or tweet.get("full_text") or tweet.get("text") or ""
    return MessageReceived(
        Text=text,
        Author=str(user.get("screen_name", "")),
        Twitter=TwitterIds(
            UserId=str(user.get("id_str", "")),
            TweetId=str(tweet.get("id_str", "")),
            InReplyToTweetId=tweet.get("in_reply_to_status_id_str"),
            InReplyToUserId=tweet.get("in_reply_to_user_id_str"),
        ),
        MessageId=str(tweet.get("id_str", "")),
        Kind=MENTION,
        ImageUrls=_photo_urls(tweet, extended),
        Language=tweet.get("lang"),
        ReceivedAt=_received_at(tweet.get("timestamp_ms")),
    )


def _mentions_bot(tweet: dict[str, Any], extended: dict[str, Any], bot: str) -> bool:
    mentions = [
        *((tweet.get("entities") or {}).get("user_mentions") or []),
        *((extended.get("entities") or {}).get("user_mentions") or []),
    ]
    return any(str(m.get("id_str", "")) == bot for m in mentions)


def _photo_urls(tweet: dict[str, Any], extended: dict[str, Any]) -> list[str]:
    """Every photo: extended_entities holds all media (entities.media only the first)."""
    urls: list[str] = []
    for holder in (extended, tweet):
        for media in (holder.get("extended_entities") or {}).get("media") or []:
            url = media.get("media_url_https")
            if media.get("type") == "photo" and url and url not in urls:
                urls.append(url)
    return urls


def _message_from_dm(
    event: dict[str, Any], payload: dict[str, Any], bot: str
) -> MessageReceived | str:
    if event.get("type") != "message_create":
        return f"direct message event of type {event.get('type')!r}"
    create = event.get("message_create") or {}
    sender = str(create.get("sender_id", ""))
    if sender == bot:
        return "own direct message"
    data = create.get("message_data") or {}
    media = (data.get("attachment") or {}).get("media") or {}
    users = payload.get("users") or {}
    return MessageReceived(
        Text=data.get("text", ""),
        Author=str((users.get(sender) or {}).get("screen_name", sender)),
        Twitter=TwitterIds(UserId=sender, DirectMessageId=str(event.get("id", ""))),
        MessageId=str(event.get("id", "")),
        Kind=DIRECT_MESSAGE,
        ImageUrls=[media["media_url_https"]] if media.get("type") == "photo" else [],
        ReceivedAt=_received_at(event.get("created_timestamp")),
    )


# --- X Activity API -------------------------------------------------------------------


def _translate_xaa(data: dict[str, Any], bot: str) -> Translation:
    result = Translation()
    event_type = str(data.get("event_type", ""))
    filter_user = str((data.get("filter") or {}).get("user_id", ""))
    if filter_user and filter_user != bot:
        raise UnsupportedPayload("filter.user_id is not this bot's user id")
    detail_type = _XAA_TYPES.get(event_type)
    if detail_type is None:
        result.notes.append(f"ignored X Activity event type {event_type!r}")
        return result
    result.raw.append(OutgoingEvent(INGRESS, detail_type, data))
    payload = data.get("payload") or {}
    if event_type == "post.mention.create":
        _collect(
            result, _mention_from_post(payload, data.get("includes") or {}, bot), payload.get("id")
        )
    elif event_type == "dm.received":
        _collect(
            result,
            _message_from_dm_event(payload, data.get("includes") or {}, bot),
            payload.get("id"),
        )
    return result


def _username(includes: dict[str, Any], user_id: str) -> str:
    for user in includes.get("users") or []:
        if str(user.get("id")) == user_id:
            return str(user.get("username", user_id))
    return user_id


def _v2_photo_urls(keys: list[str], includes: dict[str, Any]) -> list[str]:
    by_key = {m.get("media_key"): m for m in includes.get("media") or []}
    return [
        by_key[k]["url"]
        for k in keys
        if by_key.get(k, {}).get("type") == "photo" and by_key[k].get("url")
    ]


def _mention_from_post(
    post: dict[str, Any], includes: dict[str, Any], bot: str
) -> MessageReceived | str:
    author = str(post.get("author_id", ""))
    if author == bot:
        return "own post"
    if any(ref.get("type") == "retweeted" for ref in post.get("referenced_tweets") or []):
        return "retweet"
    replied_to = next(
        (r.get("id") for r in post.get("referenced_tweets") or [] if r.get("type") == "replied_to"),
        None,
    )
    text = (post.get("note_tweet") or {}).get("text") or post.get("text", "")
    return MessageReceived(
        Text=text,
        Author=_username(includes, author),
        Twitter=TwitterIds(
            UserId=author,
            TweetId=str(post.get("id", "")),
            InReplyToTweetId=replied_to,
            InReplyToUserId=post.get("in_reply_to_user_id"),
        ),
        MessageId=str(post.get("id", "")),
        Kind=MENTION,
        ImageUrls=_v2_photo_urls((post.get("attachments") or {}).get("media_keys") or [], includes),
        Language=post.get("lang"),
        ReceivedAt=post.get("created_at") and _iso(post["created_at"]),
    )


def _message_from_dm_event(
    event: dict[str, Any], includes: dict[str, Any], bot: str
) -> MessageReceived | str:
    sender = str(event.get("sender_id", ""))
    if sender == bot:
        return "own direct message"
    return MessageReceived(
        Text=event.get("text", ""),
        Author=_username(includes, sender),
        Twitter=TwitterIds(UserId=sender, DirectMessageId=str(event.get("id", ""))),
        MessageId=str(event.get("id", "")),
        Kind=DIRECT_MESSAGE,
        ImageUrls=_v2_photo_urls(
            (event.get("attachments") or {}).get("media_keys") or [], includes
        ),
        ReceivedAt=event.get("created_at") and _iso(event["created_at"]),
    )


# --- helpers ----------------------------------------------------------------------------


def _received_at(timestamp_ms: Any) -> str:
    try:
        moment = datetime.fromtimestamp(int(timestamp_ms) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return utc_now_iso()
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return utc_now_iso()
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) < 200 else text[:200] + "..."
