"""What a reply carries, whatever delivers it: the text cut to fit a post, and at most the
images X attaches, each under X's size limit.

`XPoster` (X) and `outbox.DryRunOutbox` (local files) both send exactly this, so a dry run
shows what would have been posted, and the lookup after an interrupted attempt compares
against the same text.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

from chalicelib.egress.text_fit import fit_text
from chalicelib.egress.x_errors import FinalXError
from chalicelib.events import MENTION
from chalicelib.ports import ReplyRequest

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

log = logging.getLogger(__name__)

MAX_POST_IMAGES = 4  # X attaches at most 4 photos to a post
MAX_DM_IMAGES = 1  # and exactly one attachment to a direct message
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
