"""The dashboard's JSON API and files, over real HTTP beside the webhook (magpie.server)."""

from __future__ import annotations

import http.client
import io
import json

import pytest
from magpie.client import post_signed
from magpie.replay import replay_copy
from magpie.server import BackgroundServer
from PIL import Image

from chalicelib import backend
from tests.conftest import SAMPLES, SECRET
from tests.ops.lakedata import history


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "teal").save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def dashboard(local_env):
    store = backend.local_bus_store()
    envelopes = history()
    store.append(envelopes)
    store.append([replay_copy(envelopes[1], "r1")], replay_name="r1")
    media = local_env / "media"
    (media / "media" / "1001").mkdir(parents=True)
    (media / "media" / "1001" / "0.jpg").write_bytes(jpeg())
    (media / "notes.txt").write_text("not an image")
    (local_env / "secret.txt").write_text("outside the media folder")
    with BackgroundServer() as server:
        yield server, len(envelopes) + 1


def get(server, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def get_json(server, path: str):
    status, headers, body = get(server, path)
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    return json.loads(body)


def test_the_page_and_its_files_are_served_locally(dashboard):
    server, _ = dashboard
    status, headers, _ = get(server, "/dashboard")
    assert (status, headers["Location"]) == (302, "/dashboard/")
    status, headers, body = get(server, "/dashboard/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    page = body.decode()
    assert '<script src="app.js">' in page and "http" not in page.replace("http-equiv", "")
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        status, headers, body = get(server, f"/dashboard/{name}")
        assert status == 200 and kind in headers["Content-Type"] and body
        assert b"https://" not in body  # no CDN


def test_the_feed_pages_through_the_event_log(dashboard):
    server, total = dashboard
    first = get_json(server, "/api/events?after=0&limit=5")
    assert [e["seq"] for e in first["events"]] == [1, 2, 3, 4, 5] and first["last"] == 5
    assert first["events"][1]["detail-type"] == "MESSAGE_RECEIVED"
    assert "from @ana" in first["events"][1]["summary"]
    rest = get_json(server, f"/api/events?after={first['last']}")
    assert rest["last"] == total and len(rest["events"]) == total - 5
    assert rest["events"][-1]["replay"] == "r1"
    assert get_json(server, f"/api/events?after={total}") == {"last": total, "events": []}
    status, _, body = get(server, "/api/events?after=soon")
    assert status == 400 and b"after must be an integer" in body


def test_summary_has_each_message_with_its_reply_and_alerts(dashboard):
    server, _ = dashboard
    summary = get_json(server, "/api/summary")
    messages = {m["MessageId"]: m for m in summary["messages"]}
    order = [m["MessageId"] for m in summary["messages"]]
    assert order == ["1006", "1005", "1004", "2001", "1002", "1001"]
    assert messages["1001"]["Reply"]["Status"] == "dry-run"
    assert messages["1001"]["Images"] == ["media/1001/0.jpg"]
    assert messages["1002"]["Reply"]["Status"] == "sent"
    assert messages["2001"]["Reply"] == {"Status": "skipped", "Reason": "rate_limited"}
    assert messages["2001"]["Alerts"] == ["NEGATIVE_MESSAGE"]
    assert messages["1004"]["Reply"]["Status"] == "failed"
    assert messages["1004"]["People"] == ["Eileen Collins", "Grace Hopper"]
    assert messages["1005"]["Reply"]["Status"] == "analysis failed"
    assert (messages["1006"]["Reply"], messages["1006"]["Alerts"]) == ({"Status": "waiting"}, [])
    assert (messages["1004"]["Author"], messages["1004"]["Sentiment"]) == ("ana", "POSITIVE")
    assert [a["Kind"] for a in summary["alerts"]] == [
        "ANALYSIS_FAILED",
        "REPLY_FAILED",
        "NEGATIVE_MESSAGE",
    ]
    series = summary["series"]
    at_ten = series["buckets"].index("2026-07-15T10:00:00Z")
    assert series["types"]["MESSAGE_RECEIVED"][at_ten] == 1  # the replayed copy is not counted
    assert series["sentiment"]["NEGATIVE"] == [
        1 if b in ("2026-07-16T08:00:00Z", "2026-07-16T11:00:00Z") else 0 for b in series["buckets"]
    ]


def test_thumbnails_come_from_the_blob_store_and_nothing_else(dashboard):
    server, _ = dashboard
    status, headers, body = get(server, "/api/media?key=media/1001/0.jpg")
    assert (status, headers["Content-Type"]) == (200, "image/jpeg")
    assert Image.open(io.BytesIO(body)).size == (32, 24)
    assert get(server, "/api/media?key=../secret.txt")[0] == 400
    assert get(server, "/api/media?key=/etc/passwd")[0] == 400
    assert get(server, "/api/media?key=notes.txt")[0] == 404
    assert get(server, "/api/media?key=media/1001/none.jpg")[0] == 404
    assert get(server, "/dashboard/..%2F..%2Fserver.py")[0] in (400, 404)


def test_other_methods_and_paths(dashboard):
    server, _ = dashboard
    assert get(server, "/api/summary", method="POST")[0] == 405
    assert get(server, "/api/nothing")[0] == 404
    status, headers, body = get(server, "/dashboard/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_the_webhook_still_answers_beside_the_dashboard(dashboard):
    server, total = dashboard
    status, body = post_signed(server.url, (SAMPLES / "mention-plain.json").read_bytes(), SECRET)
    assert (status, body["messages"]) == (200, 1)
    fresh = get_json(server, f"/api/events?after={total}")
    assert "MESSAGE_RECEIVED" in [e["detail-type"] for e in fresh["events"]]
    summary = get_json(server, "/api/summary")
    assert summary["messages"][0]["Reply"] == {"Status": "waiting"}  # no runtime here


def test_an_event_the_page_cannot_show_does_not_stop_the_others(local_env, caplog):
    store = backend.local_bus_store()
    broken = {**history()[2], "id": "broken", "detail": "not an object"}
    store.append([broken, history()[1]])
    with BackgroundServer() as server:
        summary = get_json(server, "/api/summary")
        feed = get_json(server, "/api/events?after=0")
    assert [m["MessageId"] for m in summary["messages"]] == ["1001"]
    first = feed["events"][0]
    assert (first["id"], first["summary"]) == ("broken", "(cannot show this event: AttributeError)")
    assert "cannot fold event broken" in caplog.text
