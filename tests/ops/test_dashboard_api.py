"""The dashboard's JSON API and files, over real HTTP beside the webhook (magpie.server)."""

from __future__ import annotations

import http.client
import io
import itertools
import json
from datetime import UTC, datetime

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
    summary = get_json(server, "/api/summary?since=2026-07-15T09:00Z&until=2026-07-16T12:00Z")
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
    # m6 is NEGATIVE by a mild 0.4, under the alert's bar: shown and counted NEGATIVE, as the
    # lake and the reports count it, with a note beside the label saying why it raised no alert.
    assert messages["1006"]["Sentiment"] == "NEGATIVE"
    assert messages["1006"]["SentimentNote"] == "below the alert threshold (Negative 0.40 < 0.6)"
    assert messages["2001"]["SentimentNote"] is None  # it alerted
    negative = series["sentiment"]["NEGATIVE"]
    hours = {b[:13] for b, n in zip(series["buckets"], negative, strict=True) if n}
    assert (sum(negative), hours) == (2, {messages[m]["Time"][:13] for m in ("2001", "1006")})


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


# --- what an operator runs the bot from -----------------------------------------------


def test_cards_carry_the_link_the_photos_the_refusals_and_no_numeric_entities(local_env):
    from magpie.dashboard.api import DashboardApi

    from chalicelib.events import Analysis, MessageAnalysed, RejectedMedia
    from tests.ops.lakedata import M1, envelope

    analysis = Analysis(
        TextSentiment="POSITIVE",
        TextEntities=[
            {"Text": "two", "Type": "CARDINAL"},
            {"Text": "Eileen Collins", "Type": "PERSON"},
            {"Text": "3rd", "Type": "ORDINAL"},
            {"Text": "5 kg", "Type": "QUANTITY"},
            {"Text": "Houston", "Type": "GPE"},
        ],
        RejectedMedia=[
            RejectedMedia(Url="https://ton.twitter.com/x.jpg", Reason="host_not_allowed")
        ],
    )
    message = MessageAnalysed(
        Text=M1.Text, Author=M1.Author, Twitter=M1.Twitter, MessageId=M1.MessageId, Kind=M1.Kind,
        Analysis=analysis,
    )  # fmt: skip
    store = backend.local_bus_store()
    store.append([envelope(M1, "2026-07-15T10:00:00Z"), envelope(message, "2026-07-15T10:00:01Z")])
    (card,) = json.loads(
        DashboardApi(store, local_env, live=False).handle("GET", "/api/summary").body
    )["messages"]
    assert card["Entities"] == ["Eileen Collins", "Houston"]
    assert card["Link"] == "https://x.com/ana/status/1001"
    assert card["Rejected"] == [
        {"Url": "https://ton.twitter.com/x.jpg", "Reason": "host_not_allowed"}
    ]


def test_filters_and_time_range(dashboard):
    server, _ = dashboard

    def ids(query: str) -> list[str]:
        return [m["MessageId"] for m in get_json(server, "/api/summary?" + query)["messages"]]

    assert ids("author=ana") == ["1004", "1001"]
    assert ids("author=@ANA") == ["1004", "1001"]
    assert ids("kind=DIRECT_MESSAGE") == ["2001"]
    # The same NEGATIVE the lake stores: the mild one (1006, under the alert's bar) too.
    assert ids("sentiment=NEGATIVE") == ["1006", "2001"]
    assert ids("since=2026-07-16T00:00Z") == ["1006", "1005", "1004", "2001"]
    assert ids("since=2026-07-15&until=2026-07-15T10:30Z") == ["1001"]
    summary = get_json(server, "/api/summary?since=2026-07-16T00:00Z")
    assert [a["Kind"] for a in summary["alerts"]] == [
        "ANALYSIS_FAILED",
        "REPLY_FAILED",
        "NEGATIVE_MESSAGE",
    ]
    status, _, body = get(server, "/api/summary?since=banana")
    assert status == 400 and b"not a time" in body


def test_reply_outcomes_with_reasons_and_latency(dashboard):
    server, _ = dashboard
    replies = get_json(server, "/api/summary")["replies"]
    assert replies["Outcomes"] == {
        "analysis failed": 1, "dry-run": 1, "failed": 1, "sent": 1, "skipped": 1, "waiting": 1,
    }  # fmt: skip
    assert replies["Reasons"] == {
        "skipped: rate_limited": 1, "failed: forbidden": 1, "analysis failed: boom": 1,
    }  # fmt: skip
    # m1: received 10:00:00, SentAt 10:00:04; m2: received 11:00:00, sent at 11:00:10.
    assert replies["Latency"] == {"Count": 2, "MeanSeconds": 7.0, "P95Seconds": 10.0}


def test_the_time_axis_is_continuous_with_idle_time_shown(local_env):
    from magpie.dashboard.api import DashboardApi, continuous_buckets

    from tests.ops.lakedata import M1, M2, envelope

    store = backend.local_bus_store()
    store.append([envelope(M1, "2026-07-15T06:00:10Z"), envelope(M2, "2026-07-15T09:30:05Z")])
    api = DashboardApi(store, local_env, live=False)
    query = "since=2026-07-15T06:00Z&until=2026-07-15T09:31Z"
    series = json.loads(api.handle("GET", "/api/summary?" + query).body)["series"]
    buckets, step = series["buckets"], series["bucket_minutes"]
    assert step == 2 and len(buckets) == 106  # 211 minutes in 2-minute bars, idle ones too
    gaps = {
        (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()
        for a, b in itertools.pairwise(buckets)
    }
    assert gaps == {120.0}
    received = series["types"]["MESSAGE_RECEIVED"]
    assert received[0] == 1 and received[-1] == 1 and sum(received) == 2
    minutes, step = continuous_buckets(
        datetime(2026, 7, 15, 6, 0, tzinfo=UTC), datetime(2026, 7, 15, 6, 30, tzinfo=UTC)
    )
    assert (len(minutes), step) == (30, 1)


def test_the_header_counts_every_message_not_just_the_cards(local_env):
    from magpie.dashboard.api import MAX_CARDS, DashboardApi

    from tests.ops.lakedata import envelope, message

    store = backend.local_bus_store()
    count = MAX_CARDS + 50
    store.append(
        [
            envelope(message(str(5000 + n), "zed", "hi"), "2026-07-15T10:00:00Z")
            for n in range(count)
        ]
    )
    summary = json.loads(
        DashboardApi(store, local_env, live=False).handle("GET", "/api/summary").body
    )
    assert summary["totals"]["messages"] == count and summary["totals"]["shown"] == count
    assert len(summary["messages"]) == MAX_CARDS


def test_health_counts_webhook_calls_by_status_dead_letters_and_backlog(local_env):
    from wsgiref.util import setup_testing_defaults

    from magpie.dashboard.api import DashboardApi
    from magpie.dashboard.health import WebhookCalls, count_webhook_calls
    from magpie.server import webhook_app

    from chalicelib.ingress.signature import SIGNATURE_HEADER, sign
    from tests.ops.lakedata import history

    calls = WebhookCalls()
    app = count_webhook_calls(webhook_app("127.0.0.1", dashboard=False), calls)

    def post(body: bytes, signature: str) -> int:
        environ: dict = {}
        setup_testing_defaults(environ)
        environ.update(
            REQUEST_METHOD="POST", PATH_INFO="/twitter", HTTP_HOST="127.0.0.1",
            CONTENT_LENGTH=str(len(body)), CONTENT_TYPE="application/json",
            **{"wsgi.input": io.BytesIO(body),
                               "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"): signature},
        )  # fmt: skip
        seen = []
        app(environ, lambda status, headers, exc_info=None: seen.append(int(status[:3])))
        return seen[0]

    sample = (SAMPLES / "mention-plain.json").read_bytes()
    assert post(sample, sign(SECRET, sample)) == 200
    assert post(sample, "sha256=AAAA") == 401
    assert post(b"{not json", sign(SECRET, b"{not json")) == 400
    store = backend.local_bus_store()
    store.append(history()[:3])
    store.route_new([("responders.text_responder", lambda envelope: True)])
    (first, *_) = store.claim_due(1)
    store.fail(first, "ValueError: boom", max_attempts=1, delay=0)

    health = json.loads(DashboardApi(store, local_env, calls=calls, live=False).handle(
        "GET", "/api/summary").body)["health"]  # fmt: skip
    assert health["Webhook"]["ByStatus"] == {"200": 1, "400": 1, "401": 1}
    assert health["Webhook"]["Refused"] == 2
    assert health["Webhook"]["LatestRefusals"][1]["Reason"] == "invalid signature"
    assert health["DeadLetters"] == {"Count": 1, "RedriveHint": "magpie replay --dead-letters"}
    assert health["HandlerErrors"] == {
        "responders.text_responder": {"DeadLetters": 1, "LastError": "ValueError: boom"}
    }
    assert health["Backlog"] == store.outstanding() > 0


def test_a_refusal_is_shown_by_its_category_never_by_the_answers_words():
    from magpie.dashboard.health import WebhookCalls, count_webhook_calls

    def gateway(environ, start_response):  # as Chalice's local gateway answers a 415
        start_response("415 Unsupported Media Type", [("Content-Type", "application/json")])
        return [b'{"Code": "UnsupportedMediaType", "Message": "Unsupported media type: None"}']

    calls = WebhookCalls()
    app = count_webhook_calls(gateway, calls)
    body = app({"PATH_INFO": "/twitter", "REQUEST_METHOD": "POST"}, lambda *a: None)
    assert body == [b'{"Code": "UnsupportedMediaType", "Message": "Unsupported media type: None"}']
    app({"PATH_INFO": "/dashboard/app.js", "REQUEST_METHOD": "GET"}, lambda *a: None)  # not counted
    snapshot = calls.snapshot()
    assert snapshot["ByStatus"] == {"415": 1}
    assert snapshot["LatestRefusals"][0]["Reason"] == "unsupported content type"
