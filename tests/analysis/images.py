"""Real test images that ship inside installed packages, as encoded bytes.

- The astronaut (Eileen Collins, NASA, public domain) from scikit-image.
- Grace Hopper (US Navy photo, public domain) from matplotlib's sample data: the second,
  different human face. scikit-image's other photos hold no detectable human face.
- Text drawn with Pillow's bundled font.
"""

from __future__ import annotations

import contextlib
import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from bench.hostile_images import bomb


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, **save_args: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92, **save_args)
    return buffer.getvalue()


def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def grace_hopper() -> Image.Image:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(path) as image:
        return image.convert("RGB")


def cat() -> Image.Image:
    """Chelsea the cat: a face, but not a human one."""
    from skimage import data

    return Image.fromarray(data.chelsea())


def disguised(image: Image.Image, scale: float = 0.6, brightness: float = 0.6) -> Image.Image:
    """Mirrored, scaled and darkened: the same person as a different photo would show."""
    mirrored = ImageOps.mirror(image)
    size = (round(image.width * scale), round(image.height * scale))
    smaller = mirrored.resize(size, Image.Resampling.LANCZOS)
    return ImageEnhance.Brightness(smaller).enhance(brightness)


TEXT_ORIGIN = (40, 150)


def text_font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=48)


def text_image(text: str, mode: str = "RGB") -> Image.Image:
    """Black text on white (or, in mode RGBA, on a transparent background). The canvas is
    close to square: rapidocr upsamples an image's short side to 736 px before detection,
    so a long thin banner would cost several times more to read."""
    background = (0, 0, 0, 0) if mode == "RGBA" else "white"
    image = Image.new(mode, (480, 360), background)
    ImageDraw.Draw(image).text(TEXT_ORIGIN, text, fill="black", font=text_font())
    return image


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height but holds one row of data: what a decompression
    bomb looks like to a reader that only parsed the header (the benchmark's own bomb)."""
    return bomb(width, height)


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Fail any attempt to open a network connection (e.g. a model download)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        patch.setattr(socket, "create_connection", refuse)
        yield
