"""The one place that talks to X: media upload, replies and direct messages.

Replies and DMs go through tweepy's v2 `Client`; media goes to the v2 upload endpoint
directly, because tweepy 4.17 only uploads through v1.1. Both are signed with OAuth 1.0a
user context (tweepy's handler), share one requests session with a default timeout (tweepy
sets none), and every failure leaves this module as one of the `XError` classes below, so the
delivery policy (`delivery.post_with_retries`) never sees tweepy or requests exceptions.

Error answers are mapped by a response hook on that session, before tweepy reads them:
tweepy parses `x-rate-limit-reset` with int() and would raise a bare ValueError for any
other value, so it never gets to see an error answer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from chalicelib.egress.x_errors import (
    FinalXError,
    RateLimited,
    TransientXError,
    Unauthorized,
    UnconfirmedPost,
    XError,
)

if TYPE_CHECKING:
    import tweepy

log = logging.getLogger(__name__)
# OAuth1 signing logs the consumer key and access token at DEBUG: never let it.
for _noisy in ("oauthlib", "requests_oauthlib"):
    logging.getLogger(_noisy).setLevel(logging.INFO)

MEDIA_UPLOAD_URL = "https://api.x.com/2/media/upload"
# X's API hosts as this module and tweepy name them; a configured base URL replaces either.
X_API_HOSTS = ("https://api.x.com", "https://api.twitter.com")
TWEET_IMAGE = "tweet_image"
DM_IMAGE = "dm_image"
USER_AGENT = "magpie-bot"

# Substrings of a 403 body (lower-cased) that make the refusal final, with the reason we report.
# X words the self-serve reply restriction, as a `not-authorized-for-resource` problem, as
# "You can only reply to or quote posts where you are mentioned or are the author."; it used to
# say "Reply to this conversation is not allowed because you have not been mentioned or
# otherwise engaged by the author ...". Both wordings are kept: either may come back.
_FORBIDDEN_REASONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("duplicate_text", ("duplicate content", "status is a duplicate", "duplicate")),
    (
        "not_summoned",
        (
            "not been mentioned",
            "otherwise engaged by the author",
            "reply to this conversation is not allowed",
            "not allowed to reply",
            "only reply to or quote posts where you are mentioned",
            "where you are mentioned or are the author",
        ),
    ),
)
_DETAIL_CHARS = 200  # enough of X's explanation to act on, never a whole payload
# A reset header is epoch seconds; anything outside 1970..9999 (or NaN/inf) is not a time a
# caller could wait for or store, so it is treated as unknown.
_LATEST_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z


@dataclass(frozen=True)
class XCredentials:
    """OAuth 1.0a user-context credentials. Nothing of them appears in repr or logs."""

    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    access_token_secret: str = field(repr=False)


class XSession(requests.Session):
    """A session that applies a default timeout, because tweepy passes none and a hung
    connection would otherwise hold the Lambda until it is killed, and that turns every
    error answer into its `XError` (`error_from_response`) as it arrives."""

    def __init__(self, timeout: float, base_url: str | None = None) -> None:
        super().__init__()
        self.default_timeout = timeout
        self.base_url = base_url
        self.hooks["response"].append(_raise_x_error)

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, self._rebased(url), *args, **kwargs)

    def _rebased(self, url: str | bytes) -> str | bytes:
        """X's URL on `base_url` instead, when one is set (tweepy names api.twitter.com)."""
        if self.base_url and isinstance(url, str):
            for host in X_API_HOSTS:
                if url.startswith(host + "/"):
                    return self.base_url.rstrip("/") + url[len(host) :]
        return url


class XClient:
    """X API v2 calls the bot needs, each returning the new object's id or raising `XError`."""

    def __init__(
        self, credentials: XCredentials, *, timeout: float = 10.0, base_url: str | None = None
    ) -> None:
        self._credentials = credentials
        self._session = XSession(timeout, base_url)
        self._tweepy_client: tweepy.Client | None = None

    def upload_media(
        self, data: bytes, media_type: str, *, media_category: str = TWEET_IMAGE
    ) -> str:
        """Upload one image in a single multipart request; returns the media id.

        `media_category` is "tweet_image" for posts and "dm_image" for direct messages. The
        one-shot form takes only `media`, `media_category` and `additional_owners` (X's schema
        refuses any other field), so the media type travels only as the file part's
        Content-Type."""
        if not data:
            raise ValueError("cannot upload empty media")
        form = {"media_category": media_category}
        files = {"media": ("media", data, media_type)}
        with translated_errors():
            response = self._session.post(
                MEDIA_UPLOAD_URL,
                data=form,
                files=files,
                auth=self._oauth1(),
                headers={"User-Agent": USER_AGENT},
            )
        if not 200 <= response.status_code < 300:
            raise error_from_response(response)
        media_id = _data_field(json_body(response), "id")
        log.info("uploaded media %s (%s, %d bytes)", media_id, media_category, len(data))
        return media_id

    def reply(
        self,
        text: str,
        in_reply_to_tweet_id: str,
        media_ids: list[str],
        exclude_reply_user_ids: list[str] | None = None,
    ) -> str:
        """Post `text` as a reply to `in_reply_to_tweet_id`; returns the new post's id.

        X prefixes a reply with everyone in the thread; `exclude_reply_user_ids` leaves those
        users out (X never drops the author of the post replied to)."""
        with translated_errors():
            body = self._client().create_tweet(
                text=text,
                in_reply_to_tweet_id=in_reply_to_tweet_id,
                media_ids=list(media_ids) or None,
                exclude_reply_user_ids=list(exclude_reply_user_ids or []) or None,
                user_auth=True,
            )
        post_id = _data_field(body, "id")
        log.info("posted reply %s to %s", post_id, in_reply_to_tweet_id)
        return post_id

    def send_dm(self, participant_id: str, text: str, media_id: str | None) -> str:
        """Send a one-to-one direct message; returns the dm_event_id.

        X refuses an empty `text` (minLength 1), so an image-only message carries only its
        attachment."""
        with translated_errors():
            body = self._client().create_direct_message(
                participant_id=participant_id,
                text=text or None,
                media_id=media_id,
                user_auth=True,
            )
        event_id = _data_field(body, "dm_event_id")
        log.info("sent direct message %s to user %s", event_id, participant_id)
        return event_id

    def _oauth1(self) -> Any:
        import tweepy

        c = self._credentials
        handler = tweepy.OAuth1UserHandler(
            c.api_key, c.api_secret, c.access_token, c.access_token_secret
        )
        return handler.apply_auth()

    def _client(self) -> tweepy.Client:
        # Built on first use so that importing or constructing XClient never imports tweepy.
        if self._tweepy_client is None:
            self._tweepy_client = tweepy_client(self._credentials, self._session)
        return self._tweepy_client


def _raise_x_error(response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
    if response.status_code >= 400:
        raise error_from_response(response)


def tweepy_client(credentials: XCredentials, session: requests.Session) -> tweepy.Client:
    """tweepy's v2 client in the bot's user context, answering dicts, over `session` (an
    `XSession`: tweepy itself has no timeout and no base URL)."""
    import tweepy

    client = tweepy.Client(
        consumer_key=credentials.api_key,
        consumer_secret=credentials.api_secret,
        access_token=credentials.access_token,
        access_token_secret=credentials.access_token_secret,
        return_type=dict,
    )
    client.session = session
    return client


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn tweepy's HTTP errors and requests' network errors into `XError`s."""
    import tweepy

    try:
        yield
    except tweepy.errors.HTTPException as exc:
        raise error_from_response(exc.response) from exc
    except requests.Timeout as exc:
        raise TransientXError(f"X request timed out: {type(exc).__name__}") from exc
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise TransientXError(f"X connection failed: {type(exc).__name__}") from exc
    except requests.JSONDecodeError as exc:
        # A 2xx whose body is not JSON: the call may have taken effect, so it is not retried.
        raise UnconfirmedPost("X answered with a body that is not JSON") from exc


def error_from_response(response: requests.Response) -> XError:
    """The `XError` for a non-2xx X response: the single status-to-exception mapping."""
    status = response.status_code
    detail = _error_detail(response)
    message = f"X answered {status}: {detail}" if detail else f"X answered {status}"
    if status == 429:
        return RateLimited(message, reset_at=rate_limit_reset(response.headers))
    if status == 401:
        return Unauthorized(message, status_code=status)
    if status == 403:
        return FinalXError(message, reason=_forbidden_reason(detail), status_code=status)
    if status >= 500:
        return TransientXError(message, status_code=status)
    reasons = {400: "bad_request", 404: "not_found"}
    return FinalXError(message, reason=reasons.get(status, f"http_{status}"), status_code=status)


def rate_limit_reset(headers: Mapping[str, str]) -> float | None:
    """When a 429 ends, in epoch seconds. The per-endpoint window is `x-rate-limit-reset`;
    an exhausted 24-hour app or user quota for posting resets later, so the latest applies."""
    resets = [_epoch(headers.get("x-rate-limit-reset"))]
    for quota in ("x-app-limit-24hour", "x-user-limit-24hour"):
        if headers.get(f"{quota}-remaining") == "0":
            resets.append(_epoch(headers.get(f"{quota}-reset")))
    known = [r for r in resets if r is not None]
    return max(known) if known else None


def _epoch(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        epoch = float(value)
    except ValueError:
        epoch = math.nan
    if not (math.isfinite(epoch) and 0 <= epoch <= _LATEST_EPOCH):
        log.warning("ignoring malformed rate-limit reset header %r", str(value)[:40])
        return None
    return epoch


def _forbidden_reason(detail: str) -> str:
    lowered = detail.lower()
    for reason, markers in _FORBIDDEN_REASONS:
        if any(marker in lowered for marker in markers):
            return reason
    return "forbidden"


def _error_detail(response: requests.Response) -> str:
    """X's explanation from an error body (a v2 problem's `reason`, `detail` and `title`, v1.1
    `errors[].message`), truncated: enough to classify and log, never the whole payload."""
    try:
        body = response.json()
    except ValueError:  # requests' JSONDecodeError is a ValueError
        return ""
    if not isinstance(body, dict):
        return ""
    # `reason` (e.g. "client-not-enrolled") first: it is short, and a 403's `detail` can
    # fill the whole budget.
    parts = [body.get("reason"), body.get("detail"), body.get("title")]
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            parts += [error.get("detail"), error.get("message")]
        elif isinstance(error, str):
            parts.append(error)
    text = " | ".join(dict.fromkeys(p for p in parts if isinstance(p, str) and p))
    return text[:_DETAIL_CHARS]


def json_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise UnconfirmedPost(
            "X answered with a body that is not JSON", status_code=response.status_code
        ) from exc


def _data_field(body: Any, name: str) -> str:
    """`body["data"][name]` as a string; X returns ids as strings, but be strict about presence."""
    data = body.get("data") if isinstance(body, dict) else None
    value = data.get(name) if isinstance(data, dict) else None
    if value is None or value == "":
        raise UnconfirmedPost(f"X response has no data.{name}")
    return str(value)
