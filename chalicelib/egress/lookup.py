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

X bills a read per resource returned (an owned read of our own posts $0.001, a DM event
$0.010: chalicelib/x_prices.json), so each lookup asks for as few as can hold the answer:
pages of X's smallest `max_results` (5 posts, 1 DM event), read newest first and only until
the answer is found or the page reaches past the intent; posts only within the window an
interrupted attempt could have posted in (`start_time`, and `end_time` once that window is
over). An unbounded page of 100 DM events would cost $1.00, a hundred summoned replies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from chalicelib.egress.content import outgoing_text
from chalicelib.egress.x_client import (
    XCredentials,
    XSession,
    translated_errors,
    tweepy_client,
)
from chalicelib.events import DIRECT_MESSAGE
from chalicelib.ports import PostResult, ReplyRequest

log = logging.getLogger(__name__)

CLOCK_SLACK_S = 5.0
POST_PAGE = 5  # X's smallest max_results for GET /2/users/:id/tweets
DM_PAGE = 1  # and for a conversation's dm_events: each event read is billed
MAX_RESOURCES = 100  # at most what the one page of 100 used to read
# How long after its intent an interrupted attempt can still post: the egress Lambda's
# timeout (110 s) with room; X refuses an end_time less than 10 s before the request.
ATTEMPT_WINDOW_S = 120.0
END_TIME_MARGIN_S = 10.0


class XReplyLookup:
    """Implements `ReplyLookup` against X: finds the bot's own reply to a request."""

    def __init__(
        self,
        credentials: XCredentials,
        bot_user_id: str,
        *,
        timeout: float = 10.0,
        base_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = credentials
        self._clock = clock
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
        window: dict[str, str] = {"start_time": _iso(since - CLOCK_SLACK_S)}
        window_end = since + ATTEMPT_WINDOW_S + CLOCK_SLACK_S
        if window_end <= self._clock() - END_TIME_MARGIN_S:
            window["end_time"] = _iso(window_end)
        for post in self._pages(
            lambda token: self._tweepy().get_users_tweets(
                self._bot_user_id,
                max_results=POST_PAGE,
                exclude=["retweets"],
                # X's reference names these post.fields and the referenced_posts expansion
                # (tweepy knows only the older tweet.fields); replies arrive with either key.
                **{"post.fields": ["created_at"]},
                expansions=["referenced_posts"],
                pagination_token=token,
                user_auth=True,
                **window,
            )
        ):
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
        ours: list[dict[str, Any]] = []
        for event in self._pages(
            lambda token: self._tweepy().get_direct_message_events(
                participant_id=request.reply_to_user_id,
                # sender_id is an expansion in X's reference, not a dm_event field.
                dm_event_fields=["created_at", "text"],
                expansions=["sender_id"],
                event_types="MessageCreate",
                max_results=DM_PAGE,
                pagination_token=token,
                user_auth=True,
            )
        ):
            if _epoch(event.get("created_at")) < since - CLOCK_SLACK_S:
                break  # newest first: everything further back predates the intent
            if str(event.get("sender_id")) != self._bot_user_id:
                continue
            if (event.get("text") or "") == text:
                return str(event["id"])
            # Any message of ours since the intent counts (a redelivered message may have
            # been answered in other words, and a second DM is the worse error); the same
            # text, further back, is still preferred.
            ours.append(event)
        return str(ours[0]["id"]) if ours else None

    def _pages(self, fetch: Callable[[str | None], Any]) -> Iterator[dict[str, Any]]:
        """The items of X's pages, newest first, fetched only as the caller reads on."""
        token: str | None = None
        read = 0
        while read < MAX_RESOURCES:
            with translated_errors():
                body = fetch(token)
            items = _data(body)
            read += len(items)
            yield from items
            meta = body.get("meta") if isinstance(body, dict) else None
            token = meta.get("next_token") if isinstance(meta, dict) else None
            if not items or not token:
                return

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
