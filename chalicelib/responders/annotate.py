"""Image responder's domain: name the people in a photo, on the photo, and in words.

Face boxes come in Rekognition's shape (`BoundingBox` = Width/Height/Left/Top as ratios of
the image). Rekognition gives them for the image *after* its EXIF orientation is applied,
so we apply it too (`ImageOps.exif_transpose`) before drawing, and write the result upright
with no EXIF at all: no orientation tag to apply twice, and no GPS or camera data leaked
back to the world. Local face detectors must likewise detect on the transposed image.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from chalicelib.egress.text_fit import weighted_length
from chalicelib.responders.bot_definition import ReplyTexts, load_bot_definition
from chalicelib.x_cost import without_links

if TYPE_CHECKING:  # Pillow is imported lazily, only where an image is really drawn
    from PIL import Image as PILImage
    from PIL import ImageFont

logger = logging.getLogger(__name__)

JPEG_QUALITY = 90
MAX_REPLY_CHARS = 240  # leaves room for "@handle " in a 280-character post
# Light fills, one per person in turn, all legible under black text.
LABEL_COLOURS = ((255, 214, 0), (0, 200, 255), (255, 105, 180), (120, 230, 80))
TEXT_COLOUR = (0, 0, 0)
MIN_FONT_PX = 6

# Moderation labels that stop an image being annotated and posted back. Rekognition's
# taxonomy, v6 and v7 names both, matched against a label's Name or its ParentName:
# - sexual content: v7 "Explicit" and all beneath it; v6 "Explicit Nudity" and all beneath;
# - graphic violence: v7 "Graphic Violence" and beneath (weapon/physical violence, self-harm,
#   blood and gore, explosions); v6 the same concepts. Plain "Violence"/"Weapons" (a soldier,
#   a holstered gun) does not count on its own;
# - "Visually Disturbing" and all beneath (corpses, emaciation, crashes), in both versions.
# Suggestive, swimwear, drugs, tobacco, alcohol, gambling, rude gestures and hate symbols
# are left to the caller's policy.
EXPLICIT_LABELS = frozenset(
    name.casefold()
    for name in (
        "Explicit",
        "Explicit Nudity",
        "Explicit Sexual Activity",
        "Sex Toys",
        "Nudity",
        "Graphic Male Nudity",
        "Graphic Female Nudity",
        "Sexual Activity",
        "Illustrated Explicit Nudity",
        "Adult Toys",
        "Graphic Violence",
        "Graphic Violence Or Gore",
        "Weapon Violence",
        "Physical Violence",
        "Self-Harm",
        "Self Injury",
        "Blood & Gore",
        "Explosions and Blasts",
        "Visually Disturbing",
        "Death and Emaciation",
        "Emaciated Bodies",
        "Corpses",
        "Hanging",
        "Crashes",
        "Air Crash",
    )
)


def is_explicit(moderation_labels: list[dict[str, Any]], min_confidence: float = 60) -> bool:
    """True if any label at or above min_confidence is, or sits under, an EXPLICIT_LABELS name."""
    for label in moderation_labels:
        if float(label.get("Confidence", 0)) < min_confidence:
            continue
        names = {str(label.get("Name", "")).casefold(), str(label.get("ParentName", "")).casefold()}
        if names & EXPLICIT_LABELS:
            return True
    return False


def reply_text_for_people(names: list[str], texts: ReplyTexts | None = None) -> str:
    """ "I recognised: A, B" (distinct names, first-seen order) or "Sorry, I recognised nobody",
    in `texts`' language (English by default).

    A long list is cut to what fits, ending "and N more", so the reply always fits a post:
    fitting weighs the text as X does (CJK counts twice), so it holds in every language."""
    texts = texts or load_bot_definition().texts
    people, separator = texts.people, texts.separators["names"]
    # A name is the outside world's (Rekognition, the gallery): one X reads as a link
    # (`will.i.am`) would make the reply a post with a URL, billed 20 times a reply.
    distinct = list(dict.fromkeys(without_links(n.strip()) for n in names if n and n.strip()))
    if not distinct:
        return people["nobody"]
    for shown in range(len(distinct), 0, -1):
        rest = len(distinct) - shown
        listed = separator.join(distinct[:shown])
        if rest:
            listed = people["more"].format(names=listed, count=rest)
        text = people["recognised"].format(names=listed)
        if weighted_length(text) <= MAX_REPLY_CHARS:
            return text
    return people["count"].format(count=len(distinct))


def annotate(
    image: bytes,
    celebrity_faces: list[dict[str, Any]],
    unrecognized_faces: list[dict[str, Any]],
    *,
    blur_unknown: bool = False,
    output_format: str | None = None,
) -> bytes:
    """The photo with each recognised person boxed and named; unknown faces blurred if asked.

    output_format: "JPEG" or "PNG"; by default PNG when the input has transparency, else JPEG.
    Raises PIL.UnidentifiedImageError for bytes that are not an image.
    """
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(image)) as opened:
        has_alpha = _has_alpha(opened)
        upright = ImageOps.exif_transpose(opened)
    picture = upright.convert("RGBA" if has_alpha else "RGB")
    if blur_unknown:
        _blur_faces(picture, (f.get("BoundingBox", {}) for f in unrecognized_faces))
    for index, celebrity in enumerate(celebrity_faces):
        box = _pixel_box(celebrity.get("Face", {}).get("BoundingBox", {}), picture.size)
        name = str(celebrity.get("Name", "")).strip()
        if box is None or not name:
            logger.warning("skipping a recognised face without a usable box or name: %r", name)
            continue
        _draw_person(picture, box, name, LABEL_COLOURS[index % len(LABEL_COLOURS)])
    return _encode(picture, output_format or ("PNG" if has_alpha else "JPEG"))


def _has_alpha(image: PILImage.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode in ("P", "L", "RGB") and "transparency" in image.info
    )


def _pixel_box(box: dict[str, Any], size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Rekognition's ratio box as pixel (left, top, right, bottom), clipped to the image.

    Rekognition may return boxes that run off the edge (negative Left, for a cut-off face)."""
    try:
        left, top = float(box["Left"]), float(box["Top"])
        width, height = float(box["Width"]), float(box["Height"])
    except (KeyError, TypeError, ValueError):
        return None
    w, h = size
    x0, y0 = max(0, round(left * w)), max(0, round(top * h))
    x1, y1 = min(w, round((left + width) * w)), min(h, round((top + height) * h))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _blur_faces(picture: PILImage.Image, boxes: Iterable[dict[str, Any]]) -> None:
    from PIL import ImageFilter

    for ratio_box in boxes:
        box = _pixel_box(ratio_box, picture.size)
        if box is None:
            continue
        # Strong enough that a face is not recognisable: radius ~1/6 of the face's short side.
        radius = max(3.0, min(box[2] - box[0], box[3] - box[1]) / 6)
        picture.paste(picture.crop(box).filter(ImageFilter.GaussianBlur(radius)), box[:2])


@dataclass(frozen=True)
class LabelLayout:
    """Where a name label goes: its (possibly shortened) text, font size and pixel rectangle."""

    text: str
    font_size: int
    x: int
    y: int
    width: int
    height: int
    padding: int


def label_layout(
    name: str, box: tuple[int, int, int, int], image_size: tuple[int, int]
) -> LabelLayout:
    """Lay out a name label for a face box: scaled to the image, never wider than it, above
    the box if there is room (else below, else inside its top), always inside the image."""
    width, height = image_size
    text, font = _fit_label(name, width, _font_px(width, height))
    pad = _padding(font)
    ascent, descent = font.getmetrics()
    label_w = min(width, math.ceil(font.getlength(text)) + 2 * pad)
    label_h = min(height, ascent + descent + 2 * pad)
    x, y = _label_origin(box, (label_w, label_h), image_size)
    return LabelLayout(text, int(font.size), x, y, label_w, label_h, pad)


def _draw_person(
    picture: PILImage.Image, box: tuple[int, int, int, int], name: str, colour: tuple[int, ...]
) -> None:
    from PIL import ImageDraw

    draw = ImageDraw.Draw(picture)
    line = max(2, round(min(picture.size) / 250))
    draw.rectangle(box, outline=colour, width=line)
    label = label_layout(name, box, picture.size)
    right, bottom = label.x + label.width - 1, label.y + label.height - 1
    draw.rectangle((label.x, label.y, right, bottom), fill=colour)
    draw.text(
        (label.x + label.padding, label.y + label.padding),
        label.text,
        font=_font(label.font_size),
        fill=TEXT_COLOUR,
        anchor="la",
    )


def _font_px(width: int, height: int) -> int:
    # About 4.5% of the short side (~23 px on 512 px, ~90 px on 3000x2000), 12 px at least;
    # _fit_label shrinks it further only when the name would not fit across the image.
    return max(12, min(120, round(min(width, height) * 0.045)))


def _fit_label(name: str, image_width: int, size: int) -> tuple[str, ImageFont.FreeTypeFont]:
    """The largest font (from `size` down) and text that fit the image's width; a name too
    long even at the smallest size is cut and ends with "..."."""
    while True:
        font = _font(size)
        if _label_width(name, font) <= image_width or size <= MIN_FONT_PX:
            break
        size = max(MIN_FONT_PX, int(size * 0.85))
    text = name
    while _label_width(text, font) > image_width and len(text) > 1:
        text = text[:-4].rstrip() + "..." if len(text) > 4 else text[:-1]
    return text, font


def _label_width(text: str, font: ImageFont.FreeTypeFont) -> float:
    return math.ceil(font.getlength(text)) + 2 * _padding(font)


def _padding(font: ImageFont.FreeTypeFont) -> int:
    return max(1, round(font.size / 5))


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    # Bundled with Pillow: no font files to ship. Given a size it is the FreeType font.
    return cast("ImageFont.FreeTypeFont", ImageFont.load_default(size=size))


def _label_origin(
    box: tuple[int, int, int, int], label: tuple[int, int], image: tuple[int, int]
) -> tuple[int, int]:
    """Above the box if there is room, else below it, else inside its top; always in the image."""
    (x0, y0, _, y1), (label_w, label_h), (width, height) = box, label, image
    if y0 - label_h >= 0:
        y = y0 - label_h
    elif y1 + label_h <= height:
        y = y1
    else:
        y = y0
    x = min(max(0, x0), max(0, width - label_w))
    y = min(max(0, y), max(0, height - label_h))
    return x, y


def _encode(picture: PILImage.Image, output_format: str) -> bytes:
    from PIL import Image

    output_format = output_format.upper()
    if output_format not in ("JPEG", "PNG"):
        raise ValueError(f"output_format must be JPEG or PNG, not {output_format!r}")
    if output_format == "JPEG" and picture.mode == "RGBA":
        # JPEG has no alpha: flatten onto white, as a viewer would show it.
        flat = Image.new("RGB", picture.size, (255, 255, 255))
        flat.paste(picture, mask=picture.getchannel("A"))
        picture = flat
    buffer = io.BytesIO()
    options = {"quality": JPEG_QUALITY} if output_format == "JPEG" else {}
    picture.save(buffer, format=output_format, **options)
    return buffer.getvalue()
