"""Annotating photos with real Pillow drawing on the real astronaut image (public domain)."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError
from skimage import data

from chalicelib.responders.annotate import (
    LABEL_COLOURS,
    annotate,
    is_explicit,
    label_layout,
    reply_text_for_people,
)

# Eileen Collins' face in skimage.data.astronaut() (512x512), as Rekognition would box it.
FACE = {"Width": 0.21, "Height": 0.22, "Left": 0.34, "Top": 0.11}
FACE_PX = (174, 56, 282, 169)
ROCKET = {"Width": 0.12, "Height": 0.14, "Left": 0.74, "Top": 0.0}  # top right, no face
YELLOW = LABEL_COLOURS[0]


def collins(box: dict = FACE, name: str = "Eileen Collins") -> dict:
    return {"Name": name, "Id": "1xYz", "MatchConfidence": 99.1, "Face": {"BoundingBox": box}}


@lru_cache(maxsize=1)
def astronaut() -> np.ndarray:
    return data.astronaut()


def encode(array: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode(image: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image)))


def region(box: tuple[int, int, int, int], shape: tuple[int, ...], margin: int = 1) -> np.ndarray:
    mask = np.zeros(shape[:2], dtype=bool)
    x0, y0, x1, y1 = box
    mask[max(0, y0 - margin) : y1 + margin + 1, max(0, x0 - margin) : x1 + margin + 1] = True
    return mask


def label_box(layout) -> tuple[int, int, int, int]:
    return (layout.x, layout.y, layout.x + layout.width - 1, layout.y + layout.height - 1)


def test_a_recognised_face_is_boxed_and_named_and_nothing_else_changes():
    source = astronaut()
    out = decode(annotate(encode(source), [collins()], [], output_format="PNG"))
    layout = label_layout("Eileen Collins", FACE_PX, (512, 512))

    # The label sits above the face, whole, inside the image.
    assert layout.text == "Eileen Collins"
    assert layout.y >= 0 and layout.y + layout.height <= FACE_PX[1]
    # The box outline is drawn on the face's edges.
    x0, y0, x1, y1 = FACE_PX
    assert tuple(out[y0, (x0 + x1) // 2]) == YELLOW
    assert tuple(out[(y0 + y1) // 2, x1]) == YELLOW
    # The label is a filled background with dark text on it.
    label = out[layout.y : layout.y + layout.height, layout.x : layout.x + layout.width]
    assert (label == YELLOW).all(axis=2).mean() > 0.6
    assert (label.sum(axis=2) < 150).mean() > 0.03
    # Every changed pixel lies on the box or the label; far from them the photo is untouched.
    changed = (out != source).any(axis=2)
    allowed = region(FACE_PX, out.shape) | region(label_box(layout), out.shape, margin=0)
    assert changed.sum() > 1000
    assert not (changed & ~allowed).any()
    assert (out[200:] == source[200:]).all()


def test_output_is_jpeg_by_default_and_png_when_the_input_has_transparency():
    jpeg = annotate(encode(astronaut()), [collins()], [])
    assert jpeg[:2] == b"\xff\xd8"
    assert Image.open(io.BytesIO(jpeg)).size == (512, 512)

    alpha = np.full((512, 512, 1), 255, dtype=np.uint8)
    alpha[400:, :] = 90
    transparent = encode(np.concatenate([astronaut(), alpha], axis=2))
    png = Image.open(io.BytesIO(annotate(transparent, [collins()], [])))
    assert (png.format, png.mode) == ("PNG", "RGBA")
    assert (np.asarray(png)[400:, :, 3] == 90).all()

    flattened = Image.open(io.BytesIO(annotate(transparent, [], [], output_format="jpeg")))
    assert (flattened.format, flattened.mode) == ("JPEG", "RGB")


def test_blurring_changes_only_the_unrecognised_faces():
    source = astronaut()
    unknown = [{"BoundingBox": FACE, "Confidence": 99.9}, {"BoundingBox": ROCKET}]
    out = decode(annotate(encode(source), [], unknown, blur_unknown=True, output_format="PNG"))

    face, rocket = region(FACE_PX, out.shape), region((379, 0, 440, 72), out.shape)
    changed = (out != source).any(axis=2)
    assert not (changed & ~(face | rocket)).any()
    x0, y0, x1, y1 = FACE_PX
    before, after = source[y0:y1, x0:x1].astype(int), out[y0:y1, x0:x1].astype(int)
    detail = lambda a: np.abs(np.diff(a, axis=1)).mean()  # noqa: E731
    assert detail(after) < detail(before) / 2  # the face really is smoothed away
    assert changed[rocket].mean() > 0.5


def test_without_blur_unrecognised_faces_are_left_alone():
    source = encode(astronaut())
    out = decode(annotate(source, [], [{"BoundingBox": FACE}], output_format="PNG"))
    assert (out == astronaut()).all()


def test_labels_are_drawn_after_blurring_so_they_stay_sharp():
    over_the_label = {"Width": 0.5, "Height": 0.11, "Left": 0.25, "Top": 0.0}
    out = decode(
        annotate(
            encode(astronaut()),
            [collins()],
            [{"BoundingBox": over_the_label}],
            blur_unknown=True,
            output_format="PNG",
        )
    )
    layout = label_layout("Eileen Collins", FACE_PX, (512, 512))
    label = out[layout.y : layout.y + layout.height, layout.x : layout.x + layout.width]
    assert (label == YELLOW).all(axis=2).mean() > 0.6
    assert (label.sum(axis=2) < 150).mean() > 0.03


@pytest.mark.parametrize(
    ("size", "min_font"),
    [((64, 64), 6), ((3000, 2000), 60)],
)
def test_tiny_and_large_images_get_a_whole_label_inside_the_image(size, min_font):
    width, height = size
    photo = np.asarray(Image.fromarray(astronaut()).resize(size))
    out = decode(annotate(encode(photo, "JPEG"), [collins()], []))  # JPEG: as posted
    box = (round(0.34 * width), round(0.11 * height), round(0.55 * width), round(0.33 * height))
    layout = label_layout("Eileen Collins", box, size)

    assert layout.text == "Eileen Collins"
    assert layout.font_size >= min_font
    assert layout.x >= 0 and layout.y >= 0
    assert layout.x + layout.width <= width and layout.y + layout.height <= height
    label = out[layout.y : layout.y + layout.height, layout.x : layout.x + layout.width]
    near_yellow = np.abs(label.astype(int) - YELLOW).max(axis=2) < 40  # JPEG noise
    assert near_yellow.mean() > 0.4
    assert (label.sum(axis=2) < 200).any()


def test_a_name_too_long_for_a_tiny_image_is_shortened_not_cut_off():
    name = "Maximilian Alexander Montgomery-Featherstonehaugh"
    layout = label_layout(name, (20, 5, 40, 25), (64, 64))
    assert layout.text.endswith("...") and name.startswith(layout.text[:-3])
    assert layout.x + layout.width <= 64


def test_the_exif_orientation_is_applied_before_drawing_and_not_written_back():
    upright = np.zeros((200, 100, 3), dtype=np.uint8) + 80  # 100 wide, 200 tall
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # as a camera stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", exif=exif)
    box = {"Width": 0.4, "Height": 0.2, "Left": 0.1, "Top": 0.5}

    result = Image.open(
        io.BytesIO(annotate(buffer.getvalue(), [collins(box)], [], output_format="PNG"))
    )
    assert result.size == (100, 200)
    assert 0x0112 not in result.getexif()
    assert tuple(np.asarray(result)[100, 30]) == YELLOW  # top edge of the box, upright


def test_boxes_off_the_edge_are_clipped_and_unusable_faces_skipped():
    source = astronaut()
    faces = [
        collins({"Width": 0.3, "Height": 0.3, "Left": -0.1, "Top": 0.5}, "Left Edge"),
        collins({"Width": 0.2, "Height": 0.2, "Left": 1.2, "Top": 0.1}, "Outside"),
        collins(FACE, "  "),
        {"Name": "No Box"},
    ]
    out = decode(annotate(encode(source), faces, [], output_format="PNG"))
    changed = (out != source).any(axis=2)
    assert changed[:, :3].any()  # the clipped box reaches the left edge
    assert not changed[:250, 200:].any()  # nothing drawn for the other three


def test_bytes_that_are_not_an_image_are_an_error():
    with pytest.raises(UnidentifiedImageError):
        annotate(b"definitely not a picture", [collins()], [])


def test_only_jpeg_and_png_are_written():
    with pytest.raises(ValueError, match="JPEG or PNG"):
        annotate(encode(astronaut()), [], [], output_format="GIF")


@pytest.mark.parametrize(
    ("names", "reply"),
    [
        (["Eileen Collins"], "I recognised: Eileen Collins"),
        (["A", "B", "A", " ", "", "C "], "I recognised: A, B, C"),
        ([], "Sorry, I recognised nobody"),
        (["", "  "], "Sorry, I recognised nobody"),
    ],
)
def test_reply_text_for_people(names, reply):
    assert reply_text_for_people(names) == reply


def test_a_crowd_is_cut_short_to_fit_a_post():
    crowd = [f"Person Number {i:02d}" for i in range(40)]
    reply = reply_text_for_people(crowd)
    assert len(reply) <= 240
    assert reply.startswith("I recognised: Person Number 00, Person Number 01")
    assert reply.endswith(" more")


@pytest.mark.parametrize(
    ("labels", "explicit"),
    [
        ([], False),
        ([{"Name": "Explicit Nudity", "ParentName": "", "Confidence": 98.0}], True),  # v6 L1
        ([{"Name": "Sexual Activity", "ParentName": "Explicit Nudity", "Confidence": 75}], True),
        ([{"Name": "Explicit", "ParentName": "", "TaxonomyLevel": 1, "Confidence": 91}], True),
        (
            [{"Name": "Exposed Male Genitalia", "ParentName": "Explicit Nudity", "Confidence": 80}],
            True,
        ),  # v7 L3: caught by its parent
        ([{"Name": "Blood & Gore", "ParentName": "Graphic Violence", "Confidence": 88}], True),
        ([{"Name": "Graphic Violence Or Gore", "ParentName": "Violence", "Confidence": 70}], True),
        ([{"Name": "Corpses", "ParentName": "Visually Disturbing", "Confidence": 65}], True),
        ([{"Name": "visually disturbing", "ParentName": "", "Confidence": 99}], True),
        (
            [
                {"Name": "Violence", "ParentName": "", "Confidence": 95},
                {"Name": "Weapons", "ParentName": "Violence", "Confidence": 95},
            ],
            False,
        ),  # a soldier or a holstered gun is not graphic
        ([{"Name": "Swimwear or Underwear", "ParentName": "", "Confidence": 99}], False),
        ([{"Name": "Suggestive", "ParentName": "", "Confidence": 99}], False),
        ([{"Name": "Explicit Nudity", "ParentName": "", "Confidence": 59.9}], False),
    ],
)
def test_is_explicit(labels, explicit):
    assert is_explicit(labels) is explicit


def test_is_explicit_honours_the_confidence_floor():
    label = [{"Name": "Explicit Nudity", "ParentName": "", "Confidence": 55.0}]
    assert not is_explicit(label)
    assert is_explicit(label, min_confidence=50)
