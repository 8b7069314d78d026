"""Egress: deliver one SEND_TWEET, at most once per message, and publish what happened.

Exactly once. The post runs inside `reply_idempotency().once("reply", "<Kind>:<MessageId>")`,
so a redelivered, retried or replayed command for a message already answered returns the
first outcome without calling X again. That ledger is kept for REPLY_MEMORY_DAYS (400 by
default), longer than the event archive is kept, so even an old archive replay is caught.

The outcome is published *after* that, under its own idempotency key: if publishing fails
the command is retried, finds the reply already made, and only publishes. On AWS the
in-progress marker expires with the invocation (the Lambda context's remaining time), so a
retry may take over a crashed attempt as soon as it could no longer be running; locally the
marker names its process and is taken over once that process is gone.

Across crashes. The post and the record of it cannot be one atomic step, so the intent to
post is recorded first (durably, in the guard store), then the post, then the record. An
attempt that finds an earlier intent for its message asks where replies go (the dry-run
outbox locally, X itself: lookup.py) whether that attempt's reply is out before posting:
if it is, the found reply is the outcome. A crash between the post and its record does
not produce a second post.

What each outcome becomes:
- posted                         -> TWEET_SENT with the new post (or DM event) id
- a loop guard refuses           -> REPLY_SKIPPED with the guard's reason (guards.py)
- the day's X budget is spent    -> REPLY_SKIPPED `budget`, one alert that day (budget.py)
- 403 duplicate / not summoned   -> REPLY_SKIPPED `duplicate_text` / `not_summoned` (final)
- 400, 404, other 403            -> TWEET_FAILED with X's reason and status (final)
- 2xx with an unreadable body    -> TWEET_FAILED `unconfirmed` (final: it may be out already)
- 401                            -> TWEET_FAILED `unauthorized` and an alert; the key is
                                    released (nothing was posted), so replaying the command
                                    once the credentials are fixed answers the message
- 429 past the bound, 5xx and timeouts after the retries, a missing image, a bus error
                                 -> raised: the bus retries, then parks it for replay
- a command not from the responders -> REPLY_SKIPPED `untrusted_source`, nothing posted
- a detail that does not fit SendTweet -> ContractError (parked)

A timeout on the post itself is retried although X may have taken the post; X then
refuses the repeat as duplicate text, which is recorded as REPLY_SKIPPED.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from chalicelib import alerts, backend
from chalicelib.config import settings
from chalicelib.egress.budget import BUDGET, XBudget
from chalicelib.egress.content import outgoing_text
from chalicelib.egress.delivery import post_with_retries
from chalicelib.egress.loop_guards import Admission, LoopGuards
from chalicelib.egress.x_errors import FinalXError, Unauthorized, UnconfirmedPost, XError
from chalicelib.errors import MagpieError
from chalicelib.events import (
    DIRECT_MESSAGE,
    EGRESS,
    MENTION,
    RESPONDERS,
    ContractError,
    OutgoingEvent,
    ReplySkipped,
    SendTweet,
    TweetFailed,
    TweetSent,
    utc_now_iso,
)
from chalicelib.media_types import sniff
from chalicelib.ports import PostResult, ReplyRequest
from chalicelib.publishing import publish

log = logging.getLogger(__name__)

REPLY_NAMESPACE = "reply"
OUTCOME_NAMESPACE = "reply-outcome"
SKIPPED_BY_X = frozenset({"duplicate_text", "not_summoned"})
UNTRUSTED_SOURCE = "untrusted_source"
UNAUTHORIZED = "unauthorized"
UNCONFIRMED = "unconfirmed"
# An intent outlives any attempt that could still be interrupted (the reply's in-progress
# window is at most the egress Lambda's 110 s), and then expires.
INTENT_TTL_SECONDS = 24 * 3600

Outcome = TweetSent | TweetFailed | ReplySkipped
Record = dict[str, Any]  # {"detail-type": ..., "detail": {...}}: what the idempotency layer keeps


class NotPosted(MagpieError):
    """Leaves the idempotent section without recording it: nothing was posted."""

    def __init__(self, record: Record) -> None:
        super().__init__(record["detail"].get("Reason"))
        self.record = record


def send_reply(
    detail: dict[str, Any],
    *,
    source: str = RESPONDERS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    context: Any = None,
) -> Outcome:
    """Post the reply a SEND_TWEET asks for, unless it was posted already; publish the outcome.

    `source` is the envelope's source: only the responders may command a reply. `context`
    is the Lambda context, whose remaining time bounds the in-progress marker."""
    command = SendTweet.from_detail(detail)
    if source != RESPONDERS:
        log.error("refusing a SEND_TWEET from %r for %s", source[:64], command.MessageId)
        skipped = ReplySkipped(
            command.MessageId, command.Kind, UNTRUSTED_SOURCE, command.ReplyToUserId
        )
        publish([skipped.to_event()])
        return skipped
    _validate(command)
    key = reply_key(command)
    delivery = _Delivery(command, command.InReplyToTweetId, sleep, clock)
    try:
        record = backend.reply_idempotency().once(
            REPLY_NAMESPACE, key, delivery.run, context=context
        )
    except NotPosted as not_posted:
        record = not_posted.record
    _publish_outcome(key, record, context)
    return _outcome(record)


def reply_key(command: SendTweet) -> str:
    """One reply per message: the key is the message replied to, whatever the command's text."""
    return f"{command.Kind}:{command.MessageId}"


def _validate(command: SendTweet) -> None:
    if command.Kind not in (MENTION, DIRECT_MESSAGE):
        raise ContractError(f"SendTweet.Kind: unknown kind {command.Kind!r}")
    if command.Kind == MENTION and not command.ReplyToTweetId:
        raise ContractError("SendTweet: a MENTION reply needs ReplyToTweetId")
    if not command.Text and not _image_keys(command):
        raise ContractError("SendTweet: a reply needs Text or an image")


class _Delivery:
    """The idempotent section: guards, then the post. Returns the outcome record."""

    def __init__(
        self,
        command: SendTweet,
        thread_parent: str | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
    ) -> None:
        self.command = command
        self.thread_parent = thread_parent if isinstance(thread_parent, str) else None
        self.sleep = sleep
        self.clock = clock

    def run(self) -> Record:
        command = self.command
        request = self._request()
        text = outgoing_text(request)
        earlier = self._posted_by_an_interrupted_attempt(request)
        if earlier is not None:
            return _sent(command, earlier, text)
        guards = _loop_guards(self.clock)
        admission = guards.admit(command.Kind, command.ReplyToUserId, self.thread_parent)
        if admission.skip_reason is not None:
            return _skipped(command, admission.skip_reason)
        budget = _x_budget(self.clock)
        charge = budget.charge(command.Kind, text, uploads=len(request.images))
        if charge is None:
            guards.not_posted(admission)
            return _skipped(command, BUDGET)
        self._mark_intent()
        try:
            result = self._post(request)
        except XError as exc:
            if isinstance(exc, UnconfirmedPost):
                log.error("reply to %s unconfirmed: %s", command.MessageId, exc)
                return _failed(command, UNCONFIRMED, exc.status_code)
            guards.not_posted(admission)
            if exc.status_code is not None:
                # X answered with an error: nothing went out. A timeout or a dropped
                # connection leaves the intent (and the charge: the reply may be out, and
                # a budget errs on the side of counting), and the next attempt looks the
                # reply up.
                backend.guard_store().forget_intent(reply_key(command))
                budget.give_back(charge)
            return _refused(command, exc)
        except Exception:
            guards.not_posted(admission)
            raise
        _remember_depth(guards, admission, result.sent_id)
        return _sent(command, result, text, charge.usd)

    def _request(self) -> ReplyRequest:
        command = self.command
        return ReplyRequest(
            kind=command.Kind,
            text=command.Text,
            reply_to_user_id=command.ReplyToUserId,
            reply_to_tweet_id=command.ReplyToTweetId if command.Kind == MENTION else None,
            images=[_load_image(key) for key in _image_keys(command)],
            exclude_reply_user_ids=tuple(command.ExcludeReplyUserIds),
        )

    def _posted_by_an_interrupted_attempt(self, request: ReplyRequest) -> PostResult | None:
        """An earlier attempt recorded its intent and never its outcome: it may have posted
        and died before saying so. Look the reply up rather than post a second one."""
        intended_at = backend.guard_store().intent_at(reply_key(self.command))
        if intended_at is None:
            return None
        log.warning("an earlier attempt at %s was interrupted; looking its reply up", request.kind)
        return backend.reply_lookup().find_reply(request, since=intended_at)

    def _mark_intent(self) -> None:
        now = self.clock()
        expires_at = int(now) + INTENT_TTL_SECONDS
        backend.guard_store().mark_intent(reply_key(self.command), now, expires_at)

    def _post(self, request: ReplyRequest) -> PostResult:
        config = settings()
        return post_with_retries(
            backend.poster(),
            request,
            max_attempts=config.reply_max_attempts,
            max_wait_s=config.reply_max_wait_seconds,
            sleep=self.sleep,
            clock=self.clock,
        )


def _refused(command: SendTweet, exc: XError) -> Record:
    """X refused: final refusals become outcomes; what may succeed later is raised."""
    if isinstance(exc, FinalXError):
        log.warning("X refused the reply to %s for good: %s", command.MessageId, exc.reason)
        if exc.reason in SKIPPED_BY_X:
            return _skipped(command, exc.reason)
        return _failed(command, exc.reason, exc.status_code)
    if isinstance(exc, Unauthorized):
        log.error("X refused our credentials replying to %s", command.MessageId)
        raise NotPosted(_failed(command, UNAUTHORIZED, exc.status_code or 401)) from exc
    raise exc  # RateLimited past the bound, TransientXError after the retries: the bus retries


def _remember_depth(guards: LoopGuards, admission: Admission, sent_id: str) -> None:
    # The reply is out: raising now would release the key and post it twice. A lost depth
    # only weakens the thread guard for this one post, so it is logged, loudly, instead.
    try:
        guards.posted(admission, sent_id)
    except Exception:
        log.exception("posted %s but could not record its thread depth", sent_id)


def _loop_guards(clock: Callable[[], float]) -> LoopGuards:
    config = settings()
    return LoopGuards(
        backend.guard_store(),
        bot_user_id=config.bot_user_id,
        replies_per_author_per_hour=config.replies_per_author_per_hour,
        max_thread_depth=config.max_bot_thread_depth,
        clock=clock,
    )


def _x_budget(clock: Callable[[], float]) -> XBudget:
    return XBudget(
        backend.guard_store(), backend.alert_sink(), settings().x_daily_budget_usd, clock
    )


def _image_keys(command: SendTweet) -> list[str]:
    if command.ImageKeys:
        return list(command.ImageKeys)
    return [command.ImageKey] if command.ImageKey else []


def _load_image(key: str) -> tuple[bytes, str]:
    """An annotated image from the blob store (BlobNotFound if it is missing)."""
    data = backend.blob_store().get(key)
    media_type = sniff(data)
    if media_type:
        return data, media_type
    raise ValueError(f"blob {key} is not a JPEG, PNG, GIF or WebP image")


# --- outcomes ---------------------------------------------------------------------------


def _record(outcome: Outcome) -> Record:
    return {"detail-type": outcome.DETAIL_TYPE, "detail": outcome.to_detail()}


def _sent(
    command: SendTweet, result: PostResult, text: str, x_cost_usd: float | None = None
) -> Record:
    log.info("replied to %s %s with %s", command.Kind, command.MessageId, result.sent_id)
    return _record(
        TweetSent(
            MessageId=command.MessageId,
            Kind=command.Kind,
            ReplyToUserId=command.ReplyToUserId,
            Text=text,
            SentId=result.sent_id,
            ReplyToTweetId=command.ReplyToTweetId,
            MediaIds=list(result.media_ids),
            DryRun=result.dry_run,
            ReceivedAt=command.ReceivedAt,
            SentAt=utc_now_iso(),
            XCostUsd=x_cost_usd,
        )
    )


def _skipped(command: SendTweet, reason: str) -> Record:
    log.info("not replying to %s %s: %s", command.Kind, command.MessageId, reason)
    return _record(ReplySkipped(command.MessageId, command.Kind, reason, command.ReplyToUserId))


def _failed(command: SendTweet, reason: str, status_code: int | None) -> Record:
    return _record(TweetFailed(command.MessageId, command.Kind, reason, status_code))


def _publish_outcome(key: str, record: Record, context: Any = None) -> None:
    """Publish an outcome once per (message, outcome type); a 401 also raises an alert."""
    detail_type, detail = record["detail-type"], record["detail"]

    def publish_it() -> str:
        publish([OutgoingEvent(EGRESS, detail_type, detail)])
        if detail.get("Reason") == UNAUTHORIZED:
            backend.alert_sink().raise_alert(
                alerts.reply_failed_alert(detail), key=f"{key}:{detail_type}"
            )
        return "published"

    backend.reply_idempotency().once(
        OUTCOME_NAMESPACE, f"{key}:{detail_type}", publish_it, context=context
    )


def _outcome(record: Record) -> Outcome:
    model = {m.DETAIL_TYPE: m for m in (TweetSent, TweetFailed, ReplySkipped)}
    return model[record["detail-type"]].from_detail(record["detail"])
