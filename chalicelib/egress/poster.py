"""How a reply is delivered, independent of where it goes.

`Poster` is the port: `XPoster` sends to X, `outbox.DryRunOutbox` writes files locally.
Both apply the same content policy (`outgoing_text`, `outgoing_images`) so a dry run shows
exactly what would have been posted. `post_with_retries` is the retry policy around any
poster: wait out rate limits when the wait is short, back off on transient failures, and
never retry what X refused for good.

A reply to a post reaches only the message's author: X would otherwise prefix it with every
user in the thread, so `XPoster` asks X to leave the others out (`exclude_reply_user_ids`;
X never drops the author of the post replied to, so the author is never in that list).
"""

from __future__ import annotations

import io
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from chalicelib.egress.text_fit import fit_text
from chalicelib.egress.x_client import (
    DM_IMAGE,
    TWEET_IMAGE,
    FinalXError,
    RateLimited,
    TransientXError,
    XClient,
)
from chalicelib.events import DIRECT_MESSAGE, MENTION
from chalicelib.ports import Poster, PostResult, ReplyRequest

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

log = logging.getLogger(__name__)

MAX_POST_IMAGES = 4  # X attaches at most 4 photos to a post
MAX_DM_IMAGES = 1  # and exactly one attachment to a direct message
RESET_MARGIN_S = 1.0  # x-rate-limit-reset has 1 s granularity: arriving on the second is early
# X takes images up to 5 MB; the decimal megabyte keeps us under either reading of "MB".
MAX_IMAGE_BYTES = 5_000_000
# Re-encodings tried, in order, for an image over the limit: (scale, JPEG quality).
_SHRINK_STEPS = ((1.0, 90), (1.0, 75), (0.75, 75), (0.5, 75), (0.35, 70), (0.25, 70))


class ImageTooLarge(FinalXError):
    """An image that stays over X's size limit even re-encoded: the reply fails for good."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="image_too_large")


def outgoing_text(request: ReplyRequest) -> str:
    """The text actually sent: posts are cut to 280 weighted characters; DMs (up to 10,000
    characters) are sent as they are."""
    return fit_text(request.text) if request.kind == MENTION else request.text


def outgoing_images(request: ReplyRequest) -> list[tuple[bytes, str]]:
    """The images actually attached: at most 4 on a post and 1 on a DM; extras are dropped
    with a warning rather than failing the whole reply. Each fits X's size limit
    (`fit_image`)."""
    limit = MAX_POST_IMAGES if request.kind == MENTION else MAX_DM_IMAGES
    if len(request.images) > limit:
        log.warning(
            "%s reply carries %d images; X accepts %d, the rest are dropped",
            request.kind,
            len(request.images),
            limit,
        )
    return [fit_image(data, media_type) for data, media_type in request.images[:limit]]


def fit_image(data: bytes, media_type: str, limit: int = MAX_IMAGE_BYTES) -> tuple[bytes, str]:
    """`(data, media_type)` unchanged when it is within `limit` bytes; otherwise the image
    re-encoded as JPEG, scaled down as far as needed. Raises `ImageTooLarge` when no step
    fits or the image cannot be decoded."""
    if len(data) <= limit:
        return data, media_type
    from PIL import Image  # only for the rare oversized image: off the cold start

    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = _flattened(opened)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageTooLarge(
            f"image of {len(data)} bytes is over X's {limit}-byte limit and cannot be "
            f"re-encoded: {type(exc).__name__}"
        ) from exc
    for scale, quality in _SHRINK_STEPS:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resized = image if scale == 1.0 else image.resize(size, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        resized.save(out, "JPEG", quality=quality, optimize=True)
        if out.tell() <= limit:
            log.info(
                "re-encoded a %d-byte %s as a %d-byte JPEG (scale %.2f, quality %d)",
                len(data),
                media_type,
                out.tell(),
                scale,
                quality,
            )
            return out.getvalue(), "image/jpeg"
    raise ImageTooLarge(
        f"image of {len(data)} bytes stays over X's {limit}-byte limit even re-encoded"
    )


def _flattened(image: PILImage) -> PILImage:
    """The first frame as RGB, transparency composited on white (JPEG has no alpha)."""
    from PIL import Image

    frame = image.convert("RGBA")
    background = Image.new("RGB", frame.size, (255, 255, 255))
    background.paste(frame, mask=frame.getchannel("A"))
    return background


class XPoster:
    """Delivers to X: uploads the images, then posts the reply or sends the DM."""

    def __init__(self, client: XClient) -> None:
        self._client = client

    def post(self, request: ReplyRequest) -> PostResult:
        text = outgoing_text(request)
        category = TWEET_IMAGE if request.kind == MENTION else DM_IMAGE
        images = outgoing_images(request)
        excluded = [u for u in request.exclude_reply_user_ids if u != request.reply_to_user_id]
        media_ids = [
            self._client.upload_media(data, media_type, media_category=category)
            for data, media_type in images
        ]
        if request.kind == DIRECT_MESSAGE:
            media_id = media_ids[0] if media_ids else None
            sent_id = self._client.send_dm(request.reply_to_user_id, text, media_id)
        elif request.reply_to_tweet_id:
            sent_id = self._client.reply(text, request.reply_to_tweet_id, media_ids, excluded)
        else:  # ReplyRequest already refuses this; kept so the type checker sees a str
            raise ValueError("a MENTION reply needs reply_to_tweet_id")
        return PostResult(sent_id=sent_id, media_ids=media_ids, dry_run=False)


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
