"""Image decoding for the local models: untrusted bytes to an upright RGB array, refused
before decoding when the header shows a shape the models should never see.

Shared by the in-process runner (`local_image.InProcessModels`) and the model worker's child
(`model_worker`), which both decode an image once for all its capabilities. Shape checked
from the header first (pixels, each side, aspect ratio: see `media.shape_problem`), the first
frame only of an animated image, EXIF orientation applied, converted to RGB (transparency
flattened onto white), and downscaled so the long side is at most MAX_ANALYSIS_SIDE.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from chalicelib.errors import InputError

if TYPE_CHECKING:
    import numpy as np

# Refuse images above this many pixels before decoding them (decompression bombs). Large
# enough for a 48 MP phone photo; X itself serves photos of at most 4096 px a side.
# We check it ourselves rather than lowering PIL.Image.MAX_IMAGE_PIXELS, a process-wide
# setting that other code (e.g. the image responder) relies on.
MAX_IMAGE_PIXELS = 50_000_000
# Long side the models see. OCR keeps small print legible at this size; dlib's HOG finds
# faces down to ~80 px, i.e. 5% of this side (see _upsample_times for smaller images).
MAX_ANALYSIS_SIDE = 1600
# Only these decoders ever see untrusted bytes (the formats media.py accepts).
PILLOW_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")


class InvalidImageError(InputError):
    """The bytes are not an image we can analyse (unreadable, or too many pixels)."""


def decode_image(image: bytes, max_side: int = MAX_ANALYSIS_SIDE) -> np.ndarray:
    """Decode to an upright RGB uint8 array (H, W, 3) whose long side is <= max_side.
    An animated image gives its first frame."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    from chalicelib.analysis.media import webp_canvas_size

    webp_size = webp_canvas_size(image)
    if webp_size is not None:  # libwebp allocates the canvas as Pillow opens the file
        _check_shape(*webp_size)
    try:
        im: Image.Image = Image.open(io.BytesIO(image), formats=PILLOW_FORMATS)
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(f"image refused as a decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImageError("bytes are not a readable image") from exc
    _check_shape(im.width, im.height)
    # JPEG can decode straight at 1/2, 1/4 or 1/8 scale: far less memory for big photos.
    im.draft("RGB", (max_side, max_side))
    try:
        im.seek(0)  # the first frame of an animation, and only that one is decoded
        im.load()
    except (OSError, SyntaxError, EOFError) as exc:  # corrupt or cut-off data
        raise InvalidImageError(f"image data is corrupt or truncated: {exc}") from exc
    im = ImageOps.exif_transpose(im)
    im = _flatten_to_rgb(im)
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


def _check_shape(width: int, height: int) -> None:
    from chalicelib.analysis.media import shape_problem

    problem = shape_problem(width, height, max_pixels=MAX_IMAGE_PIXELS)
    if problem is None:
        return
    reason, detail = problem
    if reason == "decompression_bomb":
        raise InvalidImageError(
            f"image of {width}x{height} ({width * height} pixels) exceeds the limit of "
            f"{MAX_IMAGE_PIXELS} pixels (possible decompression bomb)"
        )
    raise InvalidImageError(f"image refused for its shape: {detail}")


def _flatten_to_rgb(im: Any) -> Any:
    """RGB; transparent areas become white (dark text on a transparent PNG stays legible)."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")
