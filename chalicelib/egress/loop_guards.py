"""Loop guards: what keeps the bot out of reply storms, checked by egress before posting.

The rules, in the order egress applies them (inside the reply's idempotency, so a
redelivered command is judged once):

1. Never answer the bot itself: a command addressed to TWITTER_BOT_USER_ID is skipped
   (`own_message`), whatever its kind.
2. Thread depth, for mentions. Every post we send is remembered with its depth. Our reply
   to a message M has depth d(P) + 1 when M replies to P, one of our own posts, whose depth
   is d(P); otherwise depth 1 (M starts or joins a thread we have not posted in). A reply
   deeper than MAX_BOT_THREAD_DEPTH (K) is skipped (`thread_too_deep`). So in a thread where
   another bot answers each of our posts we post at most K times; a human who keeps
   answering us in one thread is cut off after K replies too, which is the price of not
   being able to tell bots from people. A message that replies to a third party's post
   starts again at 1: the per-author limit is the backstop for such rings.
   Direct messages have no threads; only the per-author limit applies to them.
3. Per author: at most REPLIES_PER_AUTHOR_PER_HOUR replies to one user in each UTC clock
   hour (a fixed window, so at most 2N in any 60 minutes that straddle an hour). A slot is
   taken atomically before posting and given back when nothing was posted.

The counters live behind the `GuardStore` port (chalicelib/egress/guards.py holds its two
adapters).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from chalicelib.events import MENTION
from chalicelib.ports import GuardStore

log = logging.getLogger(__name__)

OWN_MESSAGE = "own_message"
THREAD_TOO_DEEP = "thread_too_deep"
AUTHOR_RATE_LIMITED = "author_rate_limited"

SLOT_TTL_SECONDS = 2 * 3600  # a window's counter outlives its hour, then expires
DEPTH_TTL_SECONDS = 30 * 24 * 3600  # threads older than a month start again at depth 1


@dataclass(frozen=True)
class Admission:
    """The guards' verdict on one reply: `skip_reason` is None when it may be posted."""

    skip_reason: str | None
    depth: int | None = None  # the depth our reply will have (mentions only)
    slot: str | None = None  # the author-window slot taken for it


class LoopGuards:
    def __init__(
        self,
        store: GuardStore,
        *,
        bot_user_id: str,
        replies_per_author_per_hour: int,
        max_thread_depth: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._bot_user_id = bot_user_id
        self._per_hour = replies_per_author_per_hour
        self._max_depth = max_thread_depth
        self._clock = clock

    def admit(self, kind: str, reply_to_user_id: str, thread_parent: str | None) -> Admission:
        """Apply the rules in order; a slot is taken only for a reply that passes the rest."""
        if reply_to_user_id == self._bot_user_id:
            return Admission(OWN_MESSAGE)
        depth = self.reply_depth(thread_parent) if kind == MENTION else None
        if depth is not None and depth > self._max_depth:
            log.info("reply would be %d deep in a thread (max %d): skipped", depth, self._max_depth)
            return Admission(THREAD_TOO_DEEP, depth=depth)
        now = self._clock()
        bucket = author_bucket(reply_to_user_id, now)
        if not self._store.take_slot(bucket, self._per_hour, int(now) + SLOT_TTL_SECONDS):
            log.info("author %s already had %d replies this hour", reply_to_user_id, self._per_hour)
            return Admission(AUTHOR_RATE_LIMITED, depth=depth)
        return Admission(None, depth=depth, slot=bucket)

    def reply_depth(self, thread_parent: str | None) -> int:
        """The depth our reply would have: one more than our post the message answers."""
        parent_depth = self._store.depth_of(thread_parent) if thread_parent else None
        return (parent_depth or 0) + 1

    def not_posted(self, admission: Admission) -> None:
        """Give back the slot of a reply that was not posted after all."""
        if admission.slot is not None:
            self._store.give_back_slot(admission.slot)

    def posted(self, admission: Admission, sent_id: str) -> None:
        """Remember the depth of a post we sent, so replies to it are judged by rule 2."""
        if admission.depth is not None:
            expires_at = int(self._clock()) + DEPTH_TTL_SECONDS
            self._store.remember_depth(sent_id, admission.depth, expires_at)


def author_bucket(user_id: str, now: float) -> str:
    """The per-author counter for the UTC clock hour containing `now`."""
    return f"{user_id}:{datetime.fromtimestamp(now, tz=UTC):%Y%m%d%H}"
