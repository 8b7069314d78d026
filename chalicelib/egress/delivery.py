"""The delivery policy around any poster: wait out a rate limit when the wait is short,
back off on transient failures, and never retry what X refused for good."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from chalicelib.egress.x_errors import RateLimited, TransientXError
from chalicelib.ports import Poster, PostResult, ReplyRequest

log = logging.getLogger(__name__)

RESET_MARGIN_S = 1.0  # x-rate-limit-reset has 1 s granularity: arriving on the second is early


def post_with_retries(
    poster: Poster,
    request: ReplyRequest,
    *,
    max_attempts: int = 5,
    max_wait_s: float = 900,
    base_delay: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> PostResult:
    """`poster.post(request)`, retried by the delivery policy:

    - `RateLimited`: sleep until its reset (+1 s); if that is more than `max_wait_s` away,
      re-raise at once so the caller can park the reply until then.
    - `TransientXError` (5xx, timeouts): exponential backoff with jitter, each wait capped at
      `max_wait_s`.
    - Anything else (`FinalXError`, `Unauthorized`, other errors): raised at once, no retry.

    After `max_attempts` attempts the last `RateLimited`/`TransientXError` is raised.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    for attempt in range(1, max_attempts + 1):
        try:
            return poster.post(request)
        except (RateLimited, TransientXError) as exc:
            wait = _wait_before_retry(exc, attempt, base_delay, max_wait_s, clock)
            if wait is None:
                reset_at = exc.reset_at if isinstance(exc, RateLimited) else None
                log.warning("rate limited until %s, beyond %.0f s: parking", reset_at, max_wait_s)
                raise
            if attempt == max_attempts:
                log.warning("giving up after %d attempts: %s", attempt, type(exc).__name__)
                raise
            log.warning(
                "attempt %d/%d failed (%s, status %s); retrying in %.1f s",
                attempt,
                max_attempts,
                type(exc).__name__,
                exc.status_code,
                wait,
            )
            sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")


def _wait_before_retry(
    exc: RateLimited | TransientXError,
    attempt: int,
    base_delay: float,
    max_wait_s: float,
    clock: Callable[[], float],
) -> float | None:
    """Seconds to wait before the next attempt, or None if a rate limit outlasts `max_wait_s`."""
    if isinstance(exc, RateLimited) and exc.reset_at is not None:
        wait = max(0.0, exc.reset_at - clock()) + RESET_MARGIN_S
        return wait if wait <= max_wait_s else None
    return backoff_delay(attempt, base_delay, max_wait_s)


def backoff_delay(attempt: int, base_delay: float, max_wait_s: float) -> float:
    """Exponential backoff with "equal jitter": between half and all of base * 2^(attempt-1),
    capped at `max_wait_s`, so concurrent retries spread out but still wait meaningfully."""
    ceiling = min(max_wait_s, base_delay * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)
