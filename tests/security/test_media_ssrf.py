"""Media attacks end to end through the analysis step `download_media`, local backend.

tests/analysis/test_media.py holds the URL checker, fetcher and decoder case by case (every
SSRF form, redirects, caps, timeouts, bombs, the mirror). This file adds what a message
does with them: the attack URL arrives in a MESSAGE_RECEIVED, the step records the refusal
with its reason, stores nothing, and makes no request anywhere but the allowed host.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
import responses
from PIL import Image

from chalicelib.analysis import steps
from chalicelib.blobs import LocalBlobStore

ALLOWED_PREFIX = "https://pbs.twimg.com/"


def message(*urls: str) -> dict:
    return {
        "Text": "@acme_helper_bot look at this",
        "Author": "attacker",
        "MessageId": "4000000000000000001",
        "Kind": "MENTION",
        "Twitter": {"UserId": "666", "TweetId": "4000000000000000001"},
        "ImageUrls": list(urls),
        "ReceivedAt": "2026-07-15T14:03:41Z",
    }


def png(width: int = 32, height: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


@pytest.fixture
def http(local_env):
    # Nothing is registered for any other host: a request there would be a ConnectionError
    # ("fetch_error"), so a test expecting another reason also proves no request left.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def stored_blobs(home) -> list:
    return sorted(p for p in (home / "media").rglob("*") if p.is_file())


def assert_only_allowed_host_contacted(http) -> None:
    assert all(call.request.url.startswith(ALLOWED_PREFIX) for call in http.calls)


SSRF = [
    ("https://evil.example/a.jpg", "host_not_allowed"),
    ("https://pbs.twimg.com.evil.example/a.jpg", "host_not_allowed"),
    ("http://pbs.twimg.com/media/a.jpg", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://pbs.twimg.com/a", "scheme"),
    ("https://127.0.0.1/a.jpg", "ip_literal"),
    ("https://169.254.169.254/latest/meta-data/iam/", "ip_literal"),
    ("https://2130706433/a.jpg", "ip_literal"),  # 127.0.0.1 as one decimal number
    ("https://0x7f.1/a.jpg", "ip_literal"),
    ("https://0251.0376.0251.0376/a.jpg", "ip_literal"),  # 169.254.169.254 in octal
    ("https://[::1]/a.jpg", "ip_literal"),
    ("https://[::ffff:a9fe:a9fe]/a.jpg", "ip_literal"),  # IPv4-mapped metadata address
    ("https://[fd00:ec2::254]/a.jpg", "ip_literal"),  # the EC2 IPv6 metadata address
    ("https://pbs.twimg.com@169.254.169.254/a.jpg", "userinfo"),
    ("https://user:pass@pbs.twimg.com/a.jpg", "userinfo"),
    ("https://pbs.twimg.com:8443/a.jpg", "port"),
    ("https://pbs.twimg.com:443/a.jpg", "port"),
]


@pytest.mark.parametrize(("url", "reason"), SSRF, ids=[u for u, _ in SSRF])
def test_ssrf_urls_in_a_message_are_refused_without_any_request(http, local_env, url, reason):
    state = steps.download_media(message(url))
    assert state["Media"] == []
    assert state["Rejected"] == [{"Url": url, "Reason": reason}]
    assert len(http.calls) == 0
    assert stored_blobs(local_env) == []


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.example/a.png",
        "http://pbs.twimg.com/media/a.png",  # a downgrade to plain http
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/a.png",
        "https://pbs.twimg.com@evil.example/a.png",
        "//evil.example/a.png",  # scheme-relative
    ],
)
def test_redirects_off_the_allowed_host_are_not_followed(http, local_env, location):
    url = "https://pbs.twimg.com/media/redirecting.png"
    http.add(responses.GET, url, status=302, headers={"Location": location})
    state = steps.download_media(message(url))
    assert state["Rejected"] == [{"Url": url, "Reason": "redirect_not_allowed"}]
    assert [call.request.url for call in http.calls] == [url]
    assert stored_blobs(local_env) == []


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b"x" * (5 * 1024 * 1024 + 1), {}, "too_large"),
        (b"", {"Content-Length": str(50 * 1024 * 1024)}, "too_large"),
        (b"<html><script>alert(1)</script></html>", {}, "not_an_image"),
        (b"%PDF-1.7\n" + b"0" * 100, {}, "not_an_image"),
        (png()[:-30], {}, "truncated"),
        (png_bomb(50_000, 50_000), {}, "decompression_bomb"),
    ],
    ids=["oversize-body", "oversize-declared", "html", "pdf", "truncated", "bomb"],
)
def test_hostile_content_on_the_allowed_host_is_refused_and_not_stored(
    http, local_env, body, headers, reason
):
    url = "https://pbs.twimg.com/media/hostile.png"
    http.add(responses.GET, url, body=body, headers=headers, auto_calculate_content_length=False)
    state = steps.download_media(message(url))
    assert state["Rejected"] == [{"Url": url, "Reason": reason}]
    assert stored_blobs(local_env) == []
    assert_only_allowed_host_contacted(http)


def test_one_hostile_url_does_not_stop_the_good_photo_beside_it(http, local_env):
    good = "https://pbs.twimg.com/media/good.png"
    http.add(responses.GET, good, body=png())
    state = steps.download_media(message("https://[::1]/x.png", good))
    assert [r["Reason"] for r in state["Rejected"]] == ["ip_literal"]
    (stored,) = state["Media"]
    assert stored["Key"].endswith("/1.png")  # keys keep the URL's position
    assert LocalBlobStore(local_env / "media").get(stored["Key"]) == png()
    assert_only_allowed_host_contacted(http)


def test_more_than_four_photos_are_not_fetched(http, local_env):
    urls = [f"https://pbs.twimg.com/media/{i}.png" for i in range(6)]
    for url in urls[:4]:
        http.add(responses.GET, url, body=png())
    state = steps.download_media(message(*urls))
    assert len(state["Media"]) == 4
    assert [r["Reason"] for r in state["Rejected"]] == ["too_many_images"] * 2
    assert len(http.calls) == 4
