"""Message ids X never sends, and photo files an operator is handed.

Media keys are unique per (kind, message id) and never fail, whatever the id; `magpie faces
add` checks a photo as the media download does (the same formats, the header size before
any pixel is decoded) and says what is wrong in one line.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from magpie.cli import main
from PIL import Image

from chalicelib.analysis.media import download_media, media_key
from tests.local.test_cli import KNOWN


def png(size: tuple[int, int] = (2, 2)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "white").save(out, "PNG")
    return out.getvalue()


class Blobs:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.blobs[key] = data


def store_one_photo(kind: str, message_id: str, blobs: Blobs) -> list[dict]:
    stored, rejected = download_media(
        ["https://pbs.twimg.com/media/a.png"],
        message_id,
        "2026-07-15T12:00:00Z",
        blobs,
        kind=kind,
        fetch=lambda url, **_: (png(), "image/png"),
    )
    assert rejected == []
    return stored


def test_an_id_with_no_letters_or_digits_still_has_its_photos_stored():
    blobs = Blobs()
    (stored,) = store_one_photo("MENTION", "---", blobs)
    assert stored["Key"].startswith("media/2026/07/15/") and stored["Key"] in blobs.blobs


def test_ids_that_differ_only_in_dropped_characters_or_in_kind_never_share_a_key():
    blobs = Blobs()
    pairs = [("MENTION", "123"), ("MENTION", "12-3"), ("MENTION", "1.23"),
             ("DIRECT_MESSAGE", "123"), ("DIRECT_MESSAGE", "12-3"), ("MENTION", "---"),
             ("MENTION", "--")]  # fmt: skip
    keys = [store_one_photo(kind, mid, blobs)[0]["Key"] for kind, mid in pairs]
    assert len(set(keys)) == len(pairs)
    assert len(blobs.blobs) == len(pairs)  # nothing overwrote another message's photo


@pytest.mark.parametrize("message_id", ["a/../b", "..", "x" * 500, "\x00\n"])
def test_a_key_stays_one_safe_path_segment(message_id):
    key = media_key(message_id, 0, None, "jpg", kind="MENTION")
    segment = key.split("/")[4]
    assert len(key.split("/")) == 6 and segment not in ("", ".", "..")
    assert len(segment) <= 64 + 1 + 16


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A small PNG whose header says width x height (IHDR patched, its CRC recomputed)."""
    data = bytearray(png((1, 1)))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_faces_add_of_a_decompression_bomb_is_one_line_and_exit_2(local_env, tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png())
    assert main(["--home", str(local_env), "faces", "add", "Bob", str(KNOWN), str(bomb)]) == 2
    err = one_line_error(capsys)
    assert str(bomb) in err and "decompression_bomb" in err
    assert main(["--home", str(local_env), "faces", "list"]) == 0
    assert "Bob" not in capsys.readouterr().out  # nothing was enrolled


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO"])
def test_faces_add_takes_only_the_formats_the_media_download_takes(
    local_env, tmp_path, capsys, fmt
):
    photo = tmp_path / f"face.{fmt.lower()}"
    Image.open(KNOWN).convert("RGB").resize((64, 64)).save(photo, fmt)
    assert main(["--home", str(local_env), "faces", "add", "Bob", str(photo)]) == 2
    assert "not_an_image" in one_line_error(capsys)
