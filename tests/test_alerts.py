"""Alert content and the Slack-compatible forwarding of the core app's SNS handler."""

from __future__ import annotations

import json

import pytest
import responses
from chalice.test import Client
from magpie.apps import load_app

from chalicelib import alert_sinks, alerts, backend
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


# --- what reaches the forwarder, in AWS's documented shapes --------------------------------

# The SNS event Lambda receives (AWS Lambda Developer Guide, "Using Lambda with Amazon SNS",
# example event); only Subject and Message change per test.
SNS_EVENT = {
    "Records": [
        {
            "EventVersion": "1.0",
            "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:sns-lambda:"
            "21be56ed-a058-49f5-8c98-aedd2564c486",
            "EventSource": "aws:sns",
            "Sns": {
                "SignatureVersion": "1",
                "Timestamp": "2019-01-02T12:45:07.000Z",
                "Signature": "tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j...65r==",
                "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/"
                "SimpleNotificationService-ac565b8b1a6c5d002d285f9598aa1d9b.pem",
                "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                "Message": "Hello from SNS!",
                "MessageAttributes": {
                    "Test": {"Type": "String", "Value": "TestString"},
                    "TestBinary": {"Type": "Binary", "Value": "TestBinary"},
                },
                "Type": "Notification",
                "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
                "&amp;SubscriptionArn=arn:aws:sns:us-east-1:123456789012:test-lambda:"
                "21be56ed-a058-49f5-8c98-aedd2564c486",
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:sns-lambda",
                "Subject": "TestInvoke",
            },
        }
    ]
}

# A CloudWatch alarm's notification to SNS (the Message, a JSON object; CloudWatch User
# Guide, "Using Amazon CloudWatch alarms", Amazon SNS notification), for our alarm.
ALARM_MESSAGE = {
    "AlarmName": "MagpieStack-AnalysisFailuresAlarm1A2B3C4D-ABCDEF123456",
    "AlarmDescription": "Analysis executions that failed or timed out",
    "AWSAccountId": "123456789012",
    "AlarmConfigurationUpdatedTimestamp": "2026-07-15T13:02:11.321+0000",
    "NewStateValue": "ALARM",
    "NewStateReason": "Threshold Crossed: 1 datapoint [2.0 (15/07/26 14:00:00)] was greater "
    "than or equal to the threshold (1.0).",
    "StateChangeTime": "2026-07-15T14:05:42.123+0000",
    "Region": "EU (Ireland)",
    "AlarmArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:"
    "MagpieStack-AnalysisFailuresAlarm1A2B3C4D-ABCDEF123456",
    "OldStateValue": "OK",
    "OKActions": [],
    "AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:magpie-alerts"],
    "InsufficientDataActions": [],
    "Trigger": {
        "Period": 300,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1.0,
        "TreatMissingData": "notBreaching",
        "EvaluateLowSampleCountPercentile": "",
        "Metrics": [{"Id": "expr_1", "Expression": "failed + timedout", "ReturnData": True}],
    },
}

SNEAKY = "<!channel> urgent: log in at <https://evil.example/login|x.com/settings> & pay"


def sns_event(message: str, subject: str = "Magpie alert") -> dict:
    event = json.loads(json.dumps(SNS_EVENT))
    event["Records"][0]["Sns"].update(Message=message, Subject=subject)
    return event


def negative_envelope(text: str) -> dict:
    """The MESSAGE_ANALYSED event as EventBridge delivers an event whole to an SNS target."""
    envelope = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "account": "123456789012",
        "time": "2026-07-15T14:03:42Z",
        "region": "eu-west-1",
        "resources": [],
        **analysed("NEGATIVE", 0.93),
    }
    envelope["detail"]["Text"] = text
    return envelope


def forwarded(core, message: str, subject: str = "Magpie alert") -> str:
    responses.post(HOOK, json={"ok": True})
    core.lambda_.invoke("forward_alert", sns_event(message, subject))
    (call,) = responses.calls
    return json.loads(call.request.body)["text"]


@responses.activate
def test_an_alarm_is_forwarded_with_its_name_state_and_reason(core):
    text = forwarded(core, json.dumps(ALARM_MESSAGE), 'ALARM: "AnalysisFailuresAlarm"')
    assert "[None]" not in text
    assert "AnalysisFailuresAlarm" in text and "is ALARM (was OK)" in text
    assert "Threshold Crossed: 1 datapoint [2.0 (15/07/26 14:00:00)]" in text
    assert "Analysis executions that failed or timed out" in text


@responses.activate
def test_an_event_delivered_whole_is_forwarded_with_author_text_score_and_link(core):
    text = forwarded(core, json.dumps(negative_envelope("so slow, " + "x" * 300)))
    assert text.startswith("Magpie alert [NEGATIVE_MESSAGE] from @sample_user_ana")
    assert "Negative score: 0.93" in text
    assert "so slow, " + "x" * 300 in text  # the whole text, not 140 characters of it
    assert "https://x.com/sample_user_ana/status/2077393668393734144" in text


@responses.activate
def test_a_rule_text_arrives_whole_and_unquoted(core):
    # A rule's input transformer (RuleTargetInput.from_text) delivers a JSON string.
    rule_text = (
        "Magpie: a NEGATIVE message from @sample_user_ana (negative score 0.93).\n"
        "Text: " + "y" * 200 + "\nLink: https://x.com/sample_user_ana/status/1"
    )
    text = forwarded(core, json.dumps(rule_text))
    assert not text.startswith('"') and "\\n" not in text
    assert "y" * 200 in text and text.endswith("https://x.com/sample_user_ana/status/1")


@responses.activate
@pytest.mark.parametrize("shape", ["envelope", "rule text", "alert raised in code"])
def test_slack_control_sequences_in_a_post_cannot_ping_or_disguise_a_link(core, shape):
    if shape == "envelope":
        message = json.dumps(negative_envelope(SNEAKY))
    elif shape == "rule text":
        message = json.dumps(f"Magpie: a NEGATIVE message.\nText: {SNEAKY}")
    else:
        alert = alerts.negative_message_alert(analysed("NEGATIVE", 0.9)["detail"])
        message = json.dumps({**alert, "Text": SNEAKY})
    text = forwarded(core, message)
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt;" in text
    assert "&lt;https://evil.example/login|x.com/settings&gt; &amp; pay" in text


def test_slack_escape_escapes_the_ampersand_first():
    assert alerts.slack_escape("a<b>&c &lt;") == "a&lt;b&gt;&amp;c &amp;lt;"


@responses.activate
def test_sns_alert_is_forwarded_to_the_webhook(core):
    message = json.dumps(alerts.negative_message_alert(analysed("NEGATIVE", 0.9)["detail"]))
    text = forwarded(core, message)
    assert text.startswith("Magpie alert [NEGATIVE_MESSAGE] from @sample_user_ana")
    assert "Negative score: 0.90" in text
    assert "https://x.com/sample_user_ana/status/2077393668393734144" in text


@responses.activate
def test_webhook_failure_raises_so_sns_retries(core):
    responses.post(HOOK, status=500)
    event = sns_event('{"Kind": "ANALYSIS_FAILED"}')
    with pytest.raises(Exception, match="500"):
        core.lambda_.invoke("forward_alert", event)


def test_without_a_webhook_nothing_is_forwarded(local_env):
    assert alert_sinks.forward_sns_message('{"Kind": "ANALYSIS_FAILED"}') is False


def test_on_aws_the_webhook_url_is_read_from_secrets_manager(aws_credentials, monkeypatch):
    import boto3
    from aws_lambda_powertools.utilities import parameters
    from moto import mock_aws

    monkeypatch.setenv("MAGPIE_BACKEND", "aws")
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET_ID", "magpie/alert-webhook")
    monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
    parameters.clear_caches()
    backend.reset()
    with mock_aws():
        secrets = boto3.client("secretsmanager")
        secrets.create_secret(Name="magpie/alert-webhook", SecretString=json.dumps({"Url": ""}))
        assert alert_sinks.forward_sns_message(json.dumps(ALARM_MESSAGE)) is False
        parameters.clear_caches()
        secrets.put_secret_value(
            SecretId="magpie/alert-webhook", SecretString=json.dumps({"Url": HOOK})
        )
        with responses.RequestsMock() as hook:
            hook.post(HOOK, json={"ok": True})
            assert alert_sinks.forward_sns_message(json.dumps(ALARM_MESSAGE)) is True
            (call,) = hook.calls
    parameters.clear_caches()
    backend.reset()
    assert "AnalysisFailuresAlarm" in json.loads(call.request.body)["text"]


ALERT = {"Kind": "NEGATIVE_MESSAGE", "Author": "someone", "Text": "awful", "Score": 0.9}


def test_the_local_sink_writes_a_keyed_alert_once(tmp_path):
    sink = alert_sinks.LocalAlertSink(tmp_path / "alerts.jsonl")
    sink.mute_console()
    for _ in range(3):  # a redelivery, and a takeover after a kill: the same key again
        sink.raise_alert(ALERT, key="MESSAGE_ANALYSED:MENTION:1")
    sink.raise_alert(ALERT, key="MESSAGE_ANALYSED:MENTION:2")
    sink.raise_alert(ALERT)  # no key: every call is an alert
    sink.raise_alert(ALERT)
    assert len(sink.read()) == 4
    # A second sink over the same file (another process) knows the keys too.
    again = alert_sinks.LocalAlertSink(tmp_path / "alerts.jsonl")
    again.mute_console()
    again.raise_alert(ALERT, key="MESSAGE_ANALYSED:MENTION:2")
    assert len(again.read()) == 4


def test_a_keyed_alert_whose_append_never_happened_is_written_on_the_retry(tmp_path, monkeypatch):
    """Killed after the sink recorded where the line would go and before it was appended:
    the record points past the end (or, once another alert went there, at another line),
    so the retry writes it."""
    sink = alert_sinks.LocalAlertSink(tmp_path / "alerts.jsonl")
    sink.mute_console()
    real_write = alert_sinks.os.write

    def killed(fd, data):
        raise SystemExit("killed")

    monkeypatch.setattr(alert_sinks.os, "write", killed)
    with pytest.raises(SystemExit):
        sink.raise_alert(ALERT, key="k1")
    monkeypatch.setattr(alert_sinks.os, "write", real_write)
    sink.raise_alert({**ALERT, "Text": "another"}, key="k2")  # takes the offset k1 recorded
    sink.raise_alert(ALERT, key="k1")
    sink.raise_alert(ALERT, key="k1")
    assert [a["Text"] for a in sink.read()] == ["another", "awful"]


def test_threads_raising_one_keyed_alert_write_it_once(tmp_path):
    import threading

    path = tmp_path / "alerts.jsonl"

    def raise_it() -> None:
        sink = alert_sinks.LocalAlertSink(path)
        sink.mute_console()
        sink.raise_alert(ALERT, key="same")

    threads = [threading.Thread(target=raise_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(alert_sinks.LocalAlertSink(path).read()) == 1
