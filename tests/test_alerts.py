"""Alert content and the Slack-compatible forwarding of the core app's SNS handler."""

from __future__ import annotations

import json

import pytest
import responses
from chalice.test import Client
from magpie.apps import load_app

from chalicelib import alerts, backend
from chalicelib.bus.pattern import matches
from tests.conftest import ROOT

HOOK = "https://hooks.example.com/services/T000/B000/XXXX"


def analysed(sentiment: str, negative: float) -> dict:
    fixture = json.loads((ROOT / "tests/fixtures/events/MESSAGE_ANALYSED.json").read_text())
    fixture["Analysis"]["TextSentiment"] = sentiment
    fixture["Analysis"]["SentimentScore"]["Negative"] = negative
    return {"source": "magpie.analysis", "detail-type": "MESSAGE_ANALYSED", "detail": fixture}


@pytest.mark.parametrize(
    ("sentiment", "negative", "alerted"),
    [
        ("NEGATIVE", 0.92, True),
        ("NEGATIVE", 0.6, True),
        ("NEGATIVE", 0.45, False),
        ("POSITIVE", 0.9, False),
        ("MIXED", 0.7, False),
    ],
)
def test_negative_rule_needs_the_label_and_a_clear_score(sentiment, negative, alerted):
    assert matches(alerts.ALERT_PATTERNS["negative"], analysed(sentiment, negative)) is alerted


def test_negative_alert_carries_author_text_score_and_link():
    alert = alerts.negative_message_alert(analysed("NEGATIVE", 0.9)["detail"])
    assert alert["Author"] == "sample_user_ana"
    assert alert["NegativeScore"] == 0.9
    assert alert["Link"] == "https://x.com/sample_user_ana/status/2077393668393734144"
    assert alert["Text"].startswith("@acme_helper_bot")


@pytest.fixture
def core(local_env, monkeypatch):
    monkeypatch.setenv("ALERT_WEBHOOK_URL", HOOK)
    backend.reset()
    with Client(load_app("core").app) as client:
        yield client


@responses.activate
def test_sns_alert_is_forwarded_to_the_webhook(core):
    responses.post(HOOK, json={"ok": True})
    message = json.dumps(alerts.negative_message_alert(analysed("NEGATIVE", 0.9)["detail"]))
    event = core.events.generate_sns_event(message=message, subject="Magpie alert")
    core.lambda_.invoke("forward_alert", event)
    (call,) = responses.calls
    text = json.loads(call.request.body)["text"]
    assert text.startswith("Magpie alert [NEGATIVE_MESSAGE] @sample_user_ana negative 0.90")
    assert "https://x.com/sample_user_ana/status/2077393668393734144" in text


@responses.activate
def test_webhook_failure_raises_so_sns_retries(core):
    responses.post(HOOK, status=500)
    event = core.events.generate_sns_event(message='{"Kind": "ANALYSIS_FAILED"}')
    with pytest.raises(Exception, match="500"):
        core.lambda_.invoke("forward_alert", event)


def test_without_a_webhook_nothing_is_forwarded(local_env):
    assert alerts.forward_sns_message('{"Kind": "ANALYSIS_FAILED"}') is False
