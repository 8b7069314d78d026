"""Look up, on X, a reply an interrupted attempt may already have posted.

Egress records its intent before posting (guards.py). When an attempt finds an earlier
intent, that attempt may have posted and died before recording it, so before posting again
it asks X for the bot's own recent replies:

- a mention: the bot's posts since the intent (`GET /2/users/:id/tweets`, newest first,
  `start_time`), looking for one that replies to the same post;
- a direct message: the one-to-one conversation with the user
  (`GET /2/dm_conversations/with/:participant_id/dm_events`), looking for a message the bot
  sent since the intent, one with the same text first.

Both calls are made with tweepy's v2 client over the same timeout session and OAuth 1.0a
user context that `x_client` posts with, and fail as the same `XError` classes. X's
`created_at` has a server clock; `CLOCK_SLACK_S` allows for the difference with ours.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from chalicelib.egress.poster import PostResult, ReplyRequest, outgoing_text
from chalicelib.egress.x_client import (
    XCredentials,
    XSession,
    translated_errors,
    tweepy_client,
)
from chalicelib.events import DIRECT_MESSAGE

log = logging.getLogger(__name__)

CLOCK_SLACK_S = 5.0
MAX_RESULTS = 100  # one page: an interrupted attempt is minutes old at most


class XReplyLookup:
    """Implements `ReplyLookup` against X: finds the bot's own reply to a request."""

    def __init__(
        self,
        credentials: XCredentials,
        bot_user_id: str,
        *,
        timeout: float = 10.0,
        base_url: str | None = None,
    ) -> None:
        self._credentials = credentials
        self._bot_user_id = bot_user_id
        self._timeout = timeout
        self._base_url = base_url
        self._client: Any = None

    def find_reply(self, request: ReplyRequest, since: float) -> PostResult | None:
        if request.kind == DIRECT_MESSAGE:
            sent_id = self._find_dm(request, since)
        else:
            sent_id = self._find_post(request, since)
        if sent_id is not None:
            log.warning("found reply %s posted by an interrupted attempt", sent_id)
            return PostResult(sent_id=sent_id, media_ids=[], dry_run=False)
        return None

    def _find_post(self, request: ReplyRequest, since: float) -> str | None:
        with translated_errors():
            body = self._tweepy().get_users_tweets(
                self._bot_user_id,
                start_time=_iso(since - CLOCK_SLACK_S),
                max_results=MAX_RESULTS,
                exclude=["retweets"],
                # X's reference names these post.fields and the referenced_posts expansion
                # (tweepy knows only the older tweet.fields); replies arrive with either key.
                **{"post.fields": ["created_at"]},
                expansions=["referenced_posts"],
                user_auth=True,
            )
        for post in _data(body):
            references = post.get("referenced_posts") or post.get("referenced_tweets") or []
            for referenced in references:
                if (
                    referenced.get("type") == "replied_to"
                    and str(referenced.get("id")) == request.reply_to_tweet_id
                ):
                    return str(post["id"])
        return None

    def _find_dm(self, request: ReplyRequest, since: float) -> str | None:
        text = outgoing_text(request)
        with translated_errors():
            body = self._tweepy().get_direct_message_events(
                participant_id=request.reply_to_user_id,
                # sender_id is an expansion in X's reference, not a dm_event field.
                dm_event_fields=["created_at", "text"],
                expansions=["sender_id"],
                event_types="MessageCreate",
                max_results=MAX_RESULTS,
                user_auth=True,
            )
        ours = [
            event
            for event in _data(body)
            if str(event.get("sender_id")) == self._bot_user_id
            and _epoch(event.get("created_at")) >= since - CLOCK_SLACK_S
        ]
        # The same text first; but any message of ours since the intent counts: a redelivered
        # message may have been answered in other words, and a second DM is the worse error.
        ours.sort(key=lambda event: (event.get("text") or "") != text)
        return str(ours[0]["id"]) if ours else None

    def _tweepy(self) -> Any:
        if self._client is None:
            self._client = tweepy_client(self._credentials, XSession(self._timeout, self._base_url))
        return self._client


def x_reply_lookup() -> XReplyLookup:
    """The lookup for the configured bot and X keys (what `backend.reply_lookup` builds)."""
    from chalicelib.config import settings
    from chalicelib.secrets import twitter_keys

    keys = twitter_keys()
    credentials = XCredentials(
        keys.api_key, keys.api_secret, keys.access_token, keys.access_token_secret
    )
    config = settings()
    return XReplyLookup(
        credentials,
        config.bot_user_id,
        timeout=config.http_timeout_seconds,
        base_url=config.x_api_base_url,
    )


def _data(body: Any) -> list[dict[str, Any]]:
    data = body.get("data") if isinstance(body, dict) else None
    return [item for item in data or [] if isinstance(item, dict)]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(value: Any) -> float:
    """X's `created_at` (`2024-01-15T10:30:00.000Z`) in epoch seconds; 0 when unreadable."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
