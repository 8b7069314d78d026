"""Secrets never leave: with known secret values configured, run the whole stack through its
success and failure paths, then search every log line (DEBUG included), the lake, the bus
(its events and dead letters' errors), the idempotency records, the alerts, the outbox and
every HTTP answer for them.

Posting is live (MAGPIE_LIVE) against an X that `responses` plays: it accepts one reply,
answers 503 to another, 401 to a third and 403 to a direct message, so the error paths
that carry X's answers into logs and events all run. The alert webhook (a Slack-style URL
is itself a credential) is a real HTTP server on 127.0.0.1 that answers 500, so the HTTP
stack's own logging runs too.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import responses
from chalice.test import Client
from magpie.apps import load_app
from magpie.loadtest import dm_payload, mention_payload

from chalicelib.ingress.signature import sign
from tests.conftest import BOT_ID, SECRET
from tests.security.stack import now_ms, running_stack

WEBHOOK_TOKEN = "webhooktokenR3uE7"
SECRETS = {
    "TWITTER_API_KEY": "apikeyQ7w1Zr5Xq9Lb3Nc8",
    "TWITTER_API_SECRET": SECRET,
    "TWITTER_ACCESS_TOKEN": "1876543210987654321-accesstokenV4mK8pT2",
    "TWITTER_ACCESS_TOKEN_SECRET": "accesssecretH6yD1sW9fJ0",
}
# The webhook URL's path is the credential (the loopback host and port are not).
NEEDLES = [*SECRETS.values(), WEBHOOK_TOKEN]


class RefusingWebhook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(500)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # the server's own access log is not the bot's


@pytest.fixture
def alert_webhook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingWebhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/{WEBHOOK_TOKEN}"
    server.shutdown()
    server.server_close()


def x_answers(mock: responses.RequestsMock) -> None:
    """Replies to tweet 1 are posted; to 2, X is down; to 3, our keys are refused; DMs 403."""

    def create_tweet(request):
        target = json.loads(request.body)["reply"]["in_reply_to_tweet_id"]
        if target.endswith("1"):
            return 201, {}, json.dumps({"data": {"id": "7000000000000000001", "text": "ok"}})
        if target.endswith("2"):
            return 503, {}, json.dumps({"title": "Service Unavailable"})
        return 401, {}, json.dumps({"title": "Unauthorized", "detail": "Unauthorized"})

    mock.add_callback(responses.POST, re.compile(r"https://api\.(twitter|x)\.com/2/tweets"),
                      callback=create_tweet)  # fmt: skip
    mock.add(
        responses.POST,
        re.compile(r"https://api\.(twitter|x)\.com/2/dm_conversations/.*"),
        status=403,
        json={"detail": "You cannot send messages to this user."},
    )
    mock.add_passthru("http://127.0.0.1")


@pytest.fixture
def debug_log():
    """Every log record of the run, formatted with tracebacks, at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def files_under(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in home.rglob("*") if p.is_file()}


def leaks(haystack: dict[str, bytes]) -> list[tuple[str, str]]:
    return [
        (where, needle)
        for where, data in haystack.items()
        for needle in NEEDLES
        if needle.encode() in data
    ]


@pytest.mark.slow
def test_no_secret_in_logs_lake_bus_outbox_alerts_or_answers(
    local_env, monkeypatch, debug_log, alert_webhook
):
    answers: dict[str, bytes] = {}
    with (
        responses.RequestsMock(assert_all_requests_are_fired=False) as mock,
        running_stack(local_env, monkeypatch, MAGPIE_LIVE="true", MAGPIE_BUS_MAX_ATTEMPTS="2",
                      REPLY_MAX_WAIT_SECONDS="0", ALERT_WEBHOOK_URL=alert_webhook,
                      **SECRETS) as stack,
    ):  # fmt: skip
        x_answers(mock)
        stamp = now_ms()
        for index, text in enumerate(["tell me a joke", "a fact please", "I hate you, awful"]):
            answers[f"mention {index}"] = json.dumps(
                stack.deliver(mention_payload(5300000000000000001 + index, text, 0, stamp, BOT_ID))
            ).encode()
        stack.deliver(dm_payload(5300000000000000009, "hi there", 0, stamp, BOT_ID))
        sent = stack.events("TWEET_SENT")
        failed = stack.events("TWEET_FAILED")
        dead = stack.runtime.store.dead_letters()
    with Client(load_app("ingress").app) as client:
        body = json.dumps(mention_payload(5300000000000000020, "x", 0, stamp, BOT_ID)).encode()
        forged = client.http.post("/twitter", headers={"content-type": "application/json",
                                  "x-twitter-webhooks-signature": sign("guess", body)},
                                  body=body)  # fmt: skip
        crc = client.http.get("/twitter?crc_token=abc")
        answers.update({"forged": forged.body, "crc": crc.body})

    # The paths really ran: a reply, X's refusals and the failing alert forward.
    assert [s["SentId"] for s in sent] == ["7000000000000000001"]
    assert {f["Reason"] for f in failed} >= {"unauthorized"}
    assert any("503" in d.last_error for d in dead)
    assert any(d.target.startswith("alerts.") for d in dead)
    assert forged.status_code == 401 and crc.status_code == 200

    log = debug_log.getvalue()
    assert "X answered 503" in log  # the log really holds the failures...
    assert leaks({"log": log.encode()}) == []  # ...and no secret
    assert leaks(files_under(local_env)) == []
    assert leaks(answers) == []
