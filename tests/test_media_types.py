"""Recognising an image type from its bytes, for every type Magpie accepts."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from chalicelib.media_types import EXTENSION_BY_MIME, sniff


@pytest.mark.parametrize(
    ("pillow_format", "mime"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_each_accepted_format_is_recognised_and_has_an_extension(pillow_format, mime):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format=pillow_format)
    assert sniff(buffer.getvalue()) == mime
    assert mime in EXTENSION_BY_MIME


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7", b"<svg></svg>", b"RIFF\0\0\0\0WAVE"])
def test_anything_else_is_not_an_image(data):
    assert sniff(data) is None
