"""A negative mention's text, in the alert a person reads: it cannot forge a line, render a
link, restyle a terminal, and one message alerts once however often the webhook fails."""

from __future__ import annotations

import json
import socket

import pytest
import responses
from magpie.dispatcher import Dispatcher
from magpie.local_targets import local_targets

from chalicelib import alert_sinks, alerts, backend
from chalicelib.events import OutgoingEvent
from tests.conftest import ROOT
from tests.test_alerts import HOOK, core, sns_event  # noqa: F401  (core: a fixture)

FORGERY = "so bad\nNegative score: 0.01\nhttps://evil.example/login *click* `now`\r\u2028done"


def negative_detail(text: str = FORGERY, author: str = "sample_user_ana") -> dict:
    detail = json.loads((ROOT / "tests/fixtures/events/MESSAGE_ANALYSED.json").read_text())
    detail["Analysis"]["TextSentiment"] = "NEGATIVE"
    detail["Analysis"]["SentimentScore"]["Negative"] = 0.93
    detail["Text"], detail["Author"] = text, author
    return detail


def envelope(detail: dict) -> dict:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "MESSAGE_ANALYSED",
        "source": "magpie.analysis",
        "account": "123456789012",
        "time": "2026-07-15T14:03:42Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }


def forwarded(core, message: str) -> str:  # noqa: F811
    """What the core app's forward_alert posts for one SNS message (AWS's example event)."""
    responses.post(HOOK, json={"ok": True})
    core.lambda_.invoke("forward_alert", sns_event(message))
    (call,) = responses.calls
    return json.loads(call.request.body)["text"]


@responses.activate
@pytest.mark.parametrize("shape", ["envelope", "alert raised in code"])
def test_a_posts_text_is_one_quoted_line_in_the_slack_alert(core, shape):  # noqa: F811
    detail = negative_detail(author="ana\nReason: forged")
    if shape == "envelope":
        message = json.dumps(envelope(detail))
    else:
        message = json.dumps(alerts.negative_message_alert(detail))
    text = forwarded(core, message)
    lines = text.split("\n")
    assert [line.split(":")[0] for line in lines[1:]] == [
        "Negative score",
        "Text",
        "https",
        "Message id",
    ]
    assert lines[0].startswith("Magpie alert [NEGATIVE_MESSAGE] from @`ana\\nReason: forged`")
    assert lines[1] == "Negative score: 0.93"
    (quoted,) = [line for line in lines if line.startswith("Text: ")]
    # Inline code from end to end (Slack renders no link or bold inside), no backtick inside.
    body = quoted.removeprefix("Text: ")
    assert body.startswith("`") and body.endswith("`") and body.count("`") == 2
    assert "https://evil.example/login *click*" in body
    # The link is x.com's, whatever the author wrote.
    (link,) = [line for line in lines if line.startswith("https://")]
    assert link.startswith("https://x.com/ana%0AReason%3A%20forged/status/")


def test_console_alerts_show_ansi_escapes_as_text_not_as_colour(local_env, capsys):
    detail = negative_detail(text="\x1b[2J\x1b[31mFAKE", author="\x1b]0;pwned\x07ana")
    alert_sinks.LocalAlertSink(local_env / "alerts.jsonl").raise_alert(
        alerts.alert_from_envelope(envelope(detail))
    )
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b[31mFAKE" in err and "@\\x1b]0;pwned\\x07ana" in err
    assert err.count("\n") == 1


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_failing_alert_webhook_retries_the_forward_but_alerts_once(
    local_env, monkeypatch, capsys
):
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{closed_port()}/hook")
    backend.reset()
    store = backend.local_bus_store()
    backend.event_bus().put(
        [OutgoingEvent("magpie.analysis", "MESSAGE_ANALYSED", negative_detail("awful"))]
    )
    targets = [t for t in local_targets(local_env) if t.name.startswith("alerts.")]
    dispatcher = Dispatcher(store, targets, max_attempts=5, base_delay=0.01, poll_interval=0.02)
    dispatcher.start()
    try:
        assert dispatcher.wait_idle(timeout=30, settle=0.05)
    finally:
        dispatcher.stop()

    (letter,) = store.dead_letters()
    assert letter.attempts == 5  # the forward was tried every time...
    lines = (local_env / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == 1  # ...the alert written once
    assert capsys.readouterr().err.count("ALERT [NEGATIVE_MESSAGE]") == 1
