"""Safe media fetching: URL checks, capped streaming, redirects, decoding, mirror, storage."""

from __future__ import annotations

import io
import re
import struct
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from chalicelib.analysis.media import (
    MediaRejected,
    check_url,
    download_media,
    fetch_image,
    media_key,
    validate_image,
)

ALLOWED = frozenset({"pbs.twimg.com"})
MB = 1024 * 1024


# --------------------------------------------------------------------------- helpers


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    """A real encoded image with varied pixels (a gradient), so truncation hits pixel data."""
    picture = Image.linear_gradient("L").resize(size).convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, fmt)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming width x height, with a token IDAT: nothing a decoder could fill."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


def webp_vp8x_header(width: int, height: int) -> bytes:
    """A WEBP VP8X header claiming a width x height canvas (24-bit, minus one)."""
    payload = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little")
    payload += (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


class MemoryBlobStore:
    def __init__(self) -> None:
        self.blobs: dict[str, tuple[bytes, str]] = {}

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.blobs[key] = (data, content_type)

    def get(self, key: str) -> bytes:
        return self.blobs[key][0]


class CountingRaw(io.RawIOBase):
    """A response body served in reads, counting what was handed out; may time out."""

    def __init__(self, size: int, timeout_after_reads: int | None = None) -> None:
        self.left = size
        self.served = 0
        self.reads = 0
        self.timeout_after_reads = timeout_after_reads

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self.reads += 1
        if self.timeout_after_reads is not None and self.reads > self.timeout_after_reads:
            raise TimeoutError("timed out")
        count = min(len(buffer), self.left)
        buffer[:count] = b"x" * count
        self.left -= count
        self.served += count
        return count


@pytest.fixture
def http():
    # Unregistered URLs raise ConnectionError inside responses, which fetch_image reports
    # as "fetch_error": a test expecting another reason thus also proves no request left.
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def reason_of(call) -> str:
    with pytest.raises(MediaRejected) as caught:
        call()
    return caught.value.reason


def fetch(url: str, **kwargs):
    return fetch_image(url, allowed_hosts=ALLOWED, **kwargs)


# --------------------------------------------------------------------------- check_url


@pytest.mark.parametrize(
    "url",
    [
        "https://pbs.twimg.com/media/abc.jpg",
        "HTTPS://PBS.TWIMG.COM/media/abc.jpg?format=jpg&name=large",
        "https://pbs.twimg.com/media/abc.jpg#fragment",
        "https://pbs.twimg.com",
        "https://pbs.twimg.com/@evil.com",  # "@" in the path is not userinfo
        "https://ｐｂｓ.twimg.com/media/abc.jpg",  # fullwidth letters: IDNA maps to pbs
    ],
)
def test_check_url_accepts_allowed_https_urls(url: str) -> None:
    check_url(url, ALLOWED)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://pbs.twimg.com/media/abc.jpg", "scheme"),
        ("ftp://pbs.twimg.com/media/abc.jpg", "scheme"),
        ("//pbs.twimg.com/media/abc.jpg", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("https://127.0.0.1/a.jpg", "ip_literal"),
        ("https://127.0.0.1./a.jpg", "ip_literal"),
        ("https://169.254.169.254/latest/meta-data/", "ip_literal"),
        ("https://2130706433/a.jpg", "ip_literal"),  # decimal
        ("https://0x7f000001/a.jpg", "ip_literal"),  # hex, one part
        ("https://0x7f.0.0.1/a.jpg", "ip_literal"),  # hex first octet
        ("https://017700000001/a.jpg", "ip_literal"),  # octal
        ("https://0177.0.0.01/a.jpg", "ip_literal"),  # octal octets
        ("https://127.1/a.jpg", "ip_literal"),  # short form
        ("https://１２７.０.０.１/a.jpg", "ip_literal"),  # fullwidth digits
        ("https://[::1]/a.jpg", "ip_literal"),
        ("https://[::ffff:127.0.0.1]/a.jpg", "ip_literal"),
        ("https://[fe80::1%25eth0]/a.jpg", "ip_literal"),
        ("https://::1/a.jpg", "ip_literal"),
        ("https://user@pbs.twimg.com/a.jpg", "userinfo"),
        ("https://user:pass@pbs.twimg.com/a.jpg", "userinfo"),
        ("https://@pbs.twimg.com/a.jpg", "userinfo"),
        ("https://pbs.twimg.com@evil.com/a.jpg", "userinfo"),
        ("https://pbs.twimg.com:443/a.jpg", "port"),
        ("https://pbs.twimg.com:80/a.jpg", "port"),
        ("https://pbs.twimg.com:/a.jpg", "port"),
        ("https://evil.com/a.jpg", "host_not_allowed"),
        ("https://video.twimg.com/a.mp4", "host_not_allowed"),
        ("https://pbs.twimg.com.evil.com/a.jpg", "host_not_allowed"),
        ("https://evilpbs.twimg.com/a.jpg", "host_not_allowed"),
        ("https://x.pbs.twimg.com/a.jpg", "host_not_allowed"),
        ("https://twimg.com/a.jpg", "host_not_allowed"),
        ("https://pbs.twimg.com./a.jpg", "host_not_allowed"),
        ("https://pbs.twımg.com/a.jpg", "host_not_allowed"),  # dotless i lookalike
        ("https://xn--pb-mta.twimg.com/a.jpg", "host_not_allowed"),
        ("https://pbs.twimg.com\\@evil.com/a.jpg", "malformed"),
        ("https://pbs.twi\tmg.com/a.jpg", "malformed"),  # urllib would silently drop the tab
        ("https://pbs.twimg.com/a b.jpg", "malformed"),
        ("https://pbs%2etwimg.com/a.jpg", "malformed"),
        ("https:///pbs.twimg.com/a.jpg", "malformed"),
        ("https://[::1/a.jpg", "malformed"),
        ("https://pbs_twimg.com/a.jpg", "malformed"),
        ("", "malformed"),
        ("https://pbs.twimg.com/" + "a" * 3000, "malformed"),
    ],
)
def test_check_url_rejects_with_reason(url: str, reason: str) -> None:
    assert reason_of(lambda: check_url(url, ALLOWED)) == reason


def test_ip_literal_is_refused_even_when_allow_listed() -> None:
    assert reason_of(lambda: check_url("https://127.0.0.1/a", frozenset({"127.0.0.1"}))) == (
        "ip_literal"
    )


def test_allow_list_is_case_insensitive() -> None:
    check_url("https://pbs.twimg.com/a.jpg", frozenset({"PBS.TWIMG.COM"}))


# Hostile parts; the oracle below knows exactly which combinations must pass.
SCHEMES = ["https", "HTTPS", "Https", "http", "ftp", "javascript", "", "https:", "hxxps"]
SEPARATORS = ["://", ":/", ":///", "//", ":", ":\\\\"]
USERINFOS = ["", "user@", "user:pw@", "@", "pbs.twimg.com@", "evil.com@", ":@"]
LABELS = {
    "pbs": "pbs",
    "PBS": "pbs",
    "ｐｂｓ": "pbs",
    "twimg": "twimg",
    "TWIMG": "twimg",
    "com": "com",
    "evil": "evil",
    "evilpbs": "evilpbs",
    "127": "127",
    "0x7f": "0x7f",
    "1": "1",
    "2130706433": "2130706433",
    "xn--pbs-9za": "xn--pbs-9za",
    "": "",
}
HOST_EXTRAS = ["", "[::1]", "[::ffff:7f00:1]", ".", "..", "%2e"]
PORTS = ["", ":443", ":80", ":", ":0", ":65536", ":abc"]
SAFE_TAIL = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), exclude_characters="\\"
    ),
    max_size=30,
)


@st.composite
def hostile_urls(draw):
    scheme = draw(st.sampled_from(SCHEMES))
    separator = draw(st.sampled_from(SEPARATORS))
    userinfo = draw(st.sampled_from(USERINFOS))
    labels = draw(st.lists(st.sampled_from(sorted(LABELS)), min_size=1, max_size=5))
    extra = draw(st.sampled_from(HOST_EXTRAS))
    port = draw(st.sampled_from(PORTS))
    tail = draw(st.sampled_from(["", "/", "?", "#"])) + draw(SAFE_TAIL)
    if not tail.startswith(("/", "?", "#")):
        tail = ""  # otherwise the tail would extend the host, and the oracle would be wrong
    host = ".".join(labels) + extra
    url = f"{scheme}{separator}{userinfo}{host}{port}{tail}"
    must_pass = (
        scheme.lower() == "https"
        and separator == "://"
        and userinfo == ""
        and port == ""
        and extra == ""
        and [LABELS[label] for label in labels] == ["pbs", "twimg", "com"]
    )
    return url, must_pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_urls())
def test_property_only_exact_https_allowed_host_passes(case) -> None:
    url, must_pass = case
    try:
        check_url(url, ALLOWED)
        passed = True
    except MediaRejected:
        passed = False
    assert passed == must_pass, url


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
def test_property_whatever_passes_is_fetched_from_the_allowed_origin(prefix, rest) -> None:
    # IDNA legitimately maps some odd spellings (fullwidth letters, soft hyphens) onto
    # pbs.twimg.com, so the oracle is what matters: the request that really goes out.
    for url in (prefix, "https://" + prefix + rest, "https://pbs.twimg.com" + prefix):
        try:
            check_url(url, ALLOWED)
        except MediaRejected:
            continue
        assert url.lower().startswith("https://"), url
        with responses.RequestsMock() as mock:
            mock.get(re.compile(".*"), status=404)
            assert reason_of(lambda: fetch(url)) == "http_status"  # noqa: B023
            sent = urlsplit(mock.calls[0].request.url)
        assert (sent.scheme, sent.netloc) == ("https", "pbs.twimg.com"), url


# --------------------------------------------------------------------------- fetch_image


def test_fetch_returns_bytes_and_type_detected_by_pillow(http) -> None:
    jpeg = image_bytes("JPEG")
    http.get("https://pbs.twimg.com/media/a.jpg?name=large", body=jpeg, content_type="text/plain")
    data, content_type = fetch("https://PBS.twimg.com/media/a.jpg?name=large#f")
    assert (data, content_type) == (jpeg, "image/jpeg")
    sent = http.calls[0].request
    assert sent.headers["Accept-Encoding"] == "identity"
    assert sent.req_kwargs["stream"] is True
    assert sent.req_kwargs["timeout"] == (3.05, 10)


def test_relative_redirect_within_allowed_host_is_followed(http) -> None:
    png = image_bytes("PNG")
    http.get("https://pbs.twimg.com/media/a", status=302, headers={"Location": "../media2/b.png"})
    http.get("https://pbs.twimg.com/media2/b.png", body=png)
    assert fetch("https://pbs.twimg.com/media/a") == (png, "image/png")


def test_redirect_to_another_host_is_refused_and_not_followed(http) -> None:
    http.get(
        "https://pbs.twimg.com/a.jpg", status=301, headers={"Location": "https://evil.com/x.jpg"}
    )
    assert reason_of(lambda: fetch("https://pbs.twimg.com/a.jpg")) == "redirect_not_allowed"
    assert len(http.calls) == 1


@pytest.mark.parametrize(
    "location",
    [
        "http://pbs.twimg.com/a.jpg",
        "https://169.254.169.254/latest/meta-data/",
        "https://pbs.twimg.com:8443/a.jpg",
        "//evil.com/a.jpg",
        "https://user@pbs.twimg.com/a.jpg",
    ],
)
def test_every_redirect_location_is_rechecked(http, location: str) -> None:
    http.get("https://pbs.twimg.com/a.jpg", status=307, headers={"Location": location})
    with pytest.raises(MediaRejected) as caught:
        fetch("https://pbs.twimg.com/a.jpg")
    assert caught.value.reason == "redirect_not_allowed"
    assert len(http.calls) == 1


def test_redirect_chain_longer_than_the_limit_is_refused(http) -> None:
    for hop in range(4):
        http.get(f"https://pbs.twimg.com/{hop}", status=302, headers={"Location": f"/{hop + 1}"})
    assert reason_of(lambda: fetch("https://pbs.twimg.com/0", max_redirects=3)) == (
        "too_many_redirects"
    )
    assert len(http.calls) == 4  # the first request and three followed redirects


def test_redirect_chain_at_the_limit_succeeds(http) -> None:
    gif = image_bytes("GIF")
    for hop in range(3):
        http.get(f"https://pbs.twimg.com/{hop}", status=302, headers={"Location": f"/{hop + 1}"})
    http.get("https://pbs.twimg.com/3", body=gif)
    assert fetch("https://pbs.twimg.com/0", max_redirects=3) == (gif, "image/gif")


def test_redirect_without_location_is_an_http_status_rejection(http) -> None:
    http.get("https://pbs.twimg.com/a.jpg", status=302)
    assert reason_of(lambda: fetch("https://pbs.twimg.com/a.jpg")) == "http_status"


@pytest.mark.parametrize("status", [404, 403, 500, 204])
def test_non_200_status_is_refused(http, status: int) -> None:
    http.get("https://pbs.twimg.com/a.jpg", status=status, body=image_bytes("JPEG"))
    assert reason_of(lambda: fetch("https://pbs.twimg.com/a.jpg")) == "http_status"


def test_declared_content_length_over_the_cap_is_refused_before_reading(http) -> None:
    # The body itself is tiny: only the up-front header check can say "too_large".
    http.get(
        "https://pbs.twimg.com/a.jpg",
        body=b"x" * 10,
        headers={"Content-Length": str(6 * MB)},
    )
    assert reason_of(lambda: fetch("https://pbs.twimg.com/a.jpg")) == "too_large"


def test_streamed_body_over_the_cap_is_aborted_early(http) -> None:
    raw = CountingRaw(6 * MB)
    http.get("https://pbs.twimg.com/a.jpg", body=io.BufferedReader(raw, 64 * 1024))
    assert reason_of(lambda: fetch("https://pbs.twimg.com/a.jpg")) == "too_large"
    assert "Content-Length" not in http.calls[0].response.headers
    assert 5 * MB < raw.served <= 5 * MB + 128 * 1024  # stopped just past the cap


def test_body_exactly_at_the_cap_is_read(http) -> None:
    png = image_bytes("PNG")
    http.get("https://pbs.twimg.com/a.png", body=png)
    assert fetch("https://pbs.twimg.com/a.png", max_bytes=len(png)) == (png, "image/png")


def test_timeout_on_request_is_refused(http) -> None:
    http.get("https://pbs.twimg.com/a.jpg", body=requests.exceptions.ReadTimeout("slow"))
    assert reason_of(lambda: fetch("https://pbs.twimg.com/a.jpg")) == "timeout"


def test_connect_timeout_is_refused(http) -> None:
    http.get("https://pbs.twimg.com/a.jpg", body=requests.exceptions.ConnectTimeout("slow"))
    assert reason_of(lambda: fetch("https://pbs.twimg.com/a.jpg")) == "timeout"


def test_read_timeout_while_streaming_is_refused(http) -> None:
    raw = CountingRaw(MB, timeout_after_reads=2)
    http.get("https://pbs.twimg.com/a.jpg", body=io.BufferedReader(raw, 64 * 1024))
    assert reason_of(lambda: fetch("https://pbs.twimg.com/a.jpg")) == "timeout"


def test_whole_fetch_deadline_is_enforced(http) -> None:
    http.get("https://pbs.twimg.com/a.jpg", body=image_bytes("JPEG"))
    assert reason_of(lambda: fetch("https://pbs.twimg.com/a.jpg", total_timeout=-1)) == ("timeout")


def test_connection_error_is_refused(http) -> None:
    http.get("https://pbs.twimg.com/a.jpg", body=requests.exceptions.ConnectionError("reset"))
    assert reason_of(lambda: fetch("https://pbs.twimg.com/a.jpg")) == "fetch_error"


def test_body_shorter_than_its_content_length_is_refused(http) -> None:
    jpeg = image_bytes("JPEG")
    http.get("https://pbs.twimg.com/a.jpg", body=jpeg, headers={"Content-Length": "4000"})
    assert reason_of(lambda: fetch("https://pbs.twimg.com/a.jpg")) == "fetch_error"


def test_non_image_body_is_refused(http) -> None:
    http.get(
        "https://pbs.twimg.com/a.jpg", body=b"<html>not an image</html>", content_type="image/jpeg"
    )
    assert reason_of(lambda: fetch("https://pbs.twimg.com/a.jpg")) == "not_an_image"


def test_caller_session_is_used(http) -> None:
    png = image_bytes("PNG")
    http.get("https://pbs.twimg.com/a.png", body=png)
    with requests.Session() as session:
        session.headers["User-Agent"] = "magpie-test"
        assert fetch("https://pbs.twimg.com/a.png", session=session) == (png, "image/png")
    assert http.calls[0].request.headers["User-Agent"] == "magpie-test"


def test_rejected_url_makes_no_request(http) -> None:
    assert reason_of(lambda: fetch("https://evil.com/a.jpg")) == "host_not_allowed"
    assert len(http.calls) == 0


# --------------------------------------------------------------------------- validate_image


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_validate_accepts_the_four_formats(fmt: str, mime: str) -> None:
    assert validate_image(image_bytes(fmt)) == mime


@pytest.mark.parametrize(
    "data",
    [b"", b"hello", b"%PDF-1.7\n", image_bytes("BMP"), image_bytes("TIFF")],
    ids=["empty", "text", "pdf", "bmp", "tiff"],
)
def test_validate_refuses_non_images_and_other_formats(data: bytes) -> None:
    assert reason_of(lambda: validate_image(data)) == "not_an_image"


def test_validate_refuses_a_truncated_jpeg() -> None:
    jpeg = image_bytes("JPEG", (256, 256))
    assert reason_of(lambda: validate_image(jpeg[: len(jpeg) * 2 // 3])) == "truncated"


def test_validate_refuses_a_truncated_png() -> None:
    png = image_bytes("PNG", (256, 256))
    assert reason_of(lambda: validate_image(png[: len(png) // 2])) == "truncated"


def test_validate_refuses_a_png_with_a_bad_pixel_data_crc() -> None:
    png = bytearray(image_bytes("PNG"))
    idat = png.index(b"IDAT")
    png[idat + 10] ^= 0xFF  # inside the compressed pixels: only verify()'s CRC check sees it
    assert reason_of(lambda: validate_image(bytes(png))) == "corrupt"


def test_validate_refuses_a_png_with_a_bad_header_crc() -> None:
    png = bytearray(image_bytes("PNG"))
    png[29] ^= 0xFF  # the IHDR CRC: Pillow cannot even identify the file
    assert reason_of(lambda: validate_image(bytes(png))) == "not_an_image"


def test_validate_refuses_a_60_megapixel_image() -> None:
    buffer = io.BytesIO()
    Image.new("1", (7800, 7800)).save(buffer, "PNG")
    data = buffer.getvalue()
    assert len(data) < 5 * MB  # small enough to pass the download cap
    started = time.monotonic()
    assert reason_of(lambda: validate_image(data)) == "decompression_bomb"
    assert time.monotonic() - started < 1  # refused from the header, nothing decoded


def test_validate_maps_pillows_own_bomb_error() -> None:
    # Above 2 x Image.MAX_IMAGE_PIXELS Pillow raises in open(); our limit is lifted so that
    # only Pillow's guard can fire.
    data = png_header_only(20_000, 20_000)
    assert reason_of(lambda: validate_image(data, max_pixels=10**12)) == "decompression_bomb"


def test_validate_sizes_a_webp_before_pillow_opens_it() -> None:
    data = webp_vp8x_header(16_000, 16_000)
    assert reason_of(lambda: validate_image(data)) == "decompression_bomb"


def test_validate_respects_a_custom_pixel_limit_and_leaves_pillow_global_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    data = image_bytes("PNG", (100, 100))
    assert reason_of(lambda: validate_image(data, max_pixels=9_999)) == "decompression_bomb"
    assert validate_image(data, max_pixels=10_000) == "image/png"
    assert before == Image.MAX_IMAGE_PIXELS


# --------------------------------------------------------------------------- media_key


@pytest.mark.parametrize(
    ("received_at", "day"),
    [
        ("2026-07-15T23:30:00Z", "2026/07/15"),
        ("2026-07-15T23:30:00-02:00", "2026/07/16"),  # converted to UTC
        ("2026-07-15T01:30:00+05:00", "2026/07/14"),
        ("2026-07-15T10:00:00.123456+00:00", "2026/07/15"),
        ("2026-07-15", "2026/07/15"),
    ],
)
def test_media_key_is_dated_by_received_at_in_utc(received_at: str, day: str) -> None:
    assert (
        media_key("1234567890", 2, received_at, "jpg", kind="MENTION")
        == f"media/{day}/1234567890/2.jpg"
    )


@pytest.mark.parametrize("received_at", [None, "", "not a date"])
def test_media_key_falls_back_to_today_utc(received_at) -> None:
    before = datetime.now(UTC).strftime("%Y/%m/%d")
    key = media_key("42", 0, received_at, "png", kind="MENTION")
    after = datetime.now(UTC).strftime("%Y/%m/%d")
    assert key in {f"media/{before}/42/0.png", f"media/{after}/42/0.png"}


def test_media_key_keeps_only_safe_characters_of_the_message_id() -> None:
    key = media_key("12/../34 ab_C", 1, "2026-01-02T00:00:00Z", ".JPG", kind="MENTION")
    assert key.startswith("media/2026/01/02/1234abC-") and key.endswith("/1.jpg")
    assert ".." not in key


@pytest.mark.parametrize(("index", "ext"), [(0, ".."), (-1, "jpg")])
def test_media_key_refuses_a_callers_bad_extension_or_index(index, ext) -> None:
    with pytest.raises(ValueError):
        media_key("12", index, None, ext, kind="MENTION")


# --------------------------------------------------------------------------- download_media


def test_download_media_stores_valid_images_and_records_rejections(http) -> None:
    jpeg, png = image_bytes("JPEG"), image_bytes("PNG")
    http.get("https://pbs.twimg.com/media/a.jpg", body=jpeg)
    http.get("https://pbs.twimg.com/media/c.png", body=png)
    http.get("https://pbs.twimg.com/media/d.jpg", body=b"not an image")
    urls = [
        "https://pbs.twimg.com/media/a.jpg",
        "https://evil.com/b.jpg",
        "https://pbs.twimg.com/media/c.png",
        "https://pbs.twimg.com/media/d.jpg",
        "https://pbs.twimg.com/media/e.jpg",
    ]
    store = MemoryBlobStore()
    stored, rejected = download_media(
        urls, "1850000000000000001", "2026-07-15T12:00:00Z", store, kind="MENTION"
    )
    assert stored == [
        {
            "Url": urls[0],
            "Key": "media/2026/07/15/1850000000000000001/0.jpg",
            "ContentType": "image/jpeg",
            "Bytes": len(jpeg),
        },
        {
            "Url": urls[2],
            "Key": "media/2026/07/15/1850000000000000001/2.png",
            "ContentType": "image/png",
            "Bytes": len(png),
        },
    ]
    assert rejected == [
        {"Url": urls[1], "Reason": "host_not_allowed"},
        {"Url": urls[3], "Reason": "not_an_image"},
        {"Url": urls[4], "Reason": "too_many_images"},
    ]
    assert store.blobs == {
        "media/2026/07/15/1850000000000000001/0.jpg": (jpeg, "image/jpeg"),
        "media/2026/07/15/1850000000000000001/2.png": (png, "image/png"),
    }


def test_download_media_continues_after_a_timeout(http) -> None:
    http.get("https://pbs.twimg.com/a.jpg", body=requests.exceptions.ReadTimeout("slow"))
    http.get("https://pbs.twimg.com/b.gif", body=image_bytes("GIF"))
    store = MemoryBlobStore()
    stored, rejected = download_media(
        ["https://pbs.twimg.com/a.jpg", "https://pbs.twimg.com/b.gif"],
        "7",
        None,
        store,
        kind="MENTION",
    )
    assert [item["ContentType"] for item in stored] == ["image/gif"]
    assert rejected == [{"Url": "https://pbs.twimg.com/a.jpg", "Reason": "timeout"}]
    assert list(store.blobs) == [stored[0]["Key"]]


def test_download_media_passes_its_options_to_fetch() -> None:
    seen = []

    def fake_fetch(url, **kwargs):
        seen.append((url, kwargs))
        return image_bytes("PNG"), "image/png"

    hosts = frozenset({"img.example"})
    stored, rejected = download_media(
        ["https://img.example/a", "https://img.example/b"],
        "9",
        None,
        MemoryBlobStore(),
        kind="MENTION",
        allowed_hosts=hosts,
        mirror_dir=Path("/mirror"),
        max_images=1,
        fetch=fake_fetch,
    )
    assert seen == [
        ("https://img.example/a", {"allowed_hosts": hosts, "mirror_dir": Path("/mirror")})
    ]
    assert len(stored) == 1
    assert rejected == [{"Url": "https://img.example/b", "Reason": "too_many_images"}]


def test_download_media_lets_blob_store_failures_propagate(http) -> None:
    http.get("https://pbs.twimg.com/a.png", body=image_bytes("PNG"))

    class BrokenStore(MemoryBlobStore):
        def put(self, key: str, data: bytes, content_type: str) -> None:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        download_media(["https://pbs.twimg.com/a.png"], "1", None, BrokenStore(), kind="MENTION")


# --------------------------------------------------------------------------- offline mirror


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    root = tmp_path / "mirror"
    (root / "pbs.twimg.com" / "media").mkdir(parents=True)
    (root / "pbs.twimg.com" / "media" / "a.jpg").write_bytes(image_bytes("JPEG"))
    (root / "pbs.twimg.com" / "media" / "note.jpg").write_bytes(b"just text")
    (root / "evil.com").mkdir()
    (root / "evil.com" / "x.jpg").write_bytes(image_bytes("JPEG"))
    (tmp_path / "secret.png").write_bytes(image_bytes("PNG"))
    (root / "pbs.twimg.com" / "media" / "link.png").symlink_to(tmp_path / "secret.png")
    return root


def test_mirror_reads_dir_host_path_without_network(http, mirror: Path) -> None:
    store = MemoryBlobStore()
    stored, rejected = download_media(
        ["https://pbs.twimg.com/media/a.jpg?format=jpg&name=large"],
        "5",
        "2026-07-15T00:00:00Z",
        store,
        kind="MENTION",
        mirror_dir=mirror,
    )
    assert rejected == []
    assert stored[0]["Key"] == "media/2026/07/15/5/0.jpg"
    assert store.get(stored[0]["Key"]) == (mirror / "pbs.twimg.com/media/a.jpg").read_bytes()
    assert len(http.calls) == 0


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://pbs.twimg.com/../../etc/passwd", "path_traversal"),
        ("https://pbs.twimg.com/media/../../secret.png", "path_traversal"),
        ("https://pbs.twimg.com/%2e%2e/%2e%2e/secret.png", "path_traversal"),
        ("https://pbs.twimg.com/../evil.com/x.jpg", "path_traversal"),  # another host's folder
        ("https://pbs.twimg.com/media/link.png", "path_traversal"),  # symlink out of the mirror
        ("https://evil.com/x.jpg", "host_not_allowed"),  # URL checks come first
        ("http://pbs.twimg.com/media/a.jpg", "scheme"),
        ("https://pbs.twimg.com/media/missing.jpg", "not_found"),
        ("https://pbs.twimg.com/media", "not_found"),  # a folder
        ("https://pbs.twimg.com/", "not_found"),
        ("https://pbs.twimg.com/media/note.jpg", "not_an_image"),
    ],
)
def test_mirror_refusals(mirror: Path, url: str, reason: str) -> None:
    assert reason_of(lambda: fetch(url, mirror_dir=mirror)) == reason


def test_mirror_file_over_the_cap_is_refused(mirror: Path) -> None:
    jpeg = (mirror / "pbs.twimg.com/media/a.jpg").read_bytes()
    url = "https://pbs.twimg.com/media/a.jpg"
    assert reason_of(lambda: fetch(url, mirror_dir=mirror, max_bytes=len(jpeg) - 1)) == (
        "too_large"
    )
    assert fetch(url, mirror_dir=mirror, max_bytes=len(jpeg)) == (jpeg, "image/jpeg")
