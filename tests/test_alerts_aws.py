"""Alerts on AWS: the core app's alert functions (one per ALERT_PATTERNS rule) against moto's
DynamoDB (the idempotency table) and SNS (the encrypted topic, tapped by an SQS queue as
its webhook forwarder would be, and read back as its e-mail subscriber gets it).

EventBridge delivers at least once and an archive replay delivers again; a rule that
published to the topic itself would e-mail each copy. The function claims the alert on the
message first, so every copy after the first publishes nothing.
"""

from __future__ import annotations

import copy
import json

import boto3
import pytest
from botocore.exceptions import ClientError
from chalice.test import Client
from magpie.apps import load_app
from moto import mock_aws
from moto.sns.models import sns_backends

from chalicelib import backend
from chalicelib.alerts import ALERT_PATTERNS
from chalicelib.bus.pattern import matches
from tests.conftest import ROOT, create_idempotency_table

FIXTURES = ROOT / "tests" / "fixtures" / "events"
TABLE = "magpie-idempotency"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:magpie-alerts"


class Topic:
    """The alert topic with a queue subscribed (what the forwarder and any JSON subscriber
    get) and an e-mail subscription (moto keeps what was published, per protocol)."""

    def __init__(self) -> None:
        sns, self.sqs = boto3.client("sns"), boto3.client("sqs")
        sns.create_topic(Name="magpie-alerts")
        self.url = self.sqs.create_queue(QueueName="alerts")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=TOPIC_ARN, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"])
        sns.subscribe(TopicArn=TOPIC_ARN, Protocol="email", Endpoint="ops@example.com")

    def received(self) -> list[dict]:
        """The alerts the queue got (the JSON alert of each SNS message)."""
        found = []
        while batch := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            found.extend(json.loads(json.loads(m["Body"])["Message"]) for m in batch)
            for m in batch:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        return found

    def emails(self) -> list[str]:
        """The text each e-mail subscriber was sent."""
        topic = sns_backends[ACCOUNT][REGION].topics[TOPIC_ARN]
        return [json.loads(sent[1])["email"] for sent in topic.sent_notifications]


@pytest.fixture
def aws(aws_credentials, monkeypatch):
    with mock_aws():
        monkeypatch.setenv("MAGPIE_BACKEND", "aws")
        monkeypatch.setenv("IDEMPOTENCY_TABLE", TABLE)
        monkeypatch.setenv("ALERT_TOPIC_ARN", TOPIC_ARN)
        backend.reset()
        create_idempotency_table(TABLE)
        yield
        backend.reset()


@pytest.fixture
def core(aws):
    with Client(load_app("core").app) as client:
        yield client


def envelope(client: Client, detail_type: str, source: str, detail: dict) -> dict:
    """EventBridge's event as a rule's Lambda target receives it."""
    return client.events.generate_cw_event(
        source=source, detail_type=detail_type, detail=detail, resources=[], region=REGION
    )


def negative(client: Client, message_id: str = "2077393668393734144", text: str = "") -> dict:
    detail = json.loads((FIXTURES / "MESSAGE_ANALYSED.json").read_text())
    detail["MessageId"] = detail["Twitter"]["TweetId"] = message_id
    detail["Text"] = text or "@acme_helper_bot this is the worst service I have ever had"
    detail["Analysis"]["TextSentiment"] = "NEGATIVE"
    detail["Analysis"]["SentimentScore"] = {
        "Positive": 0.02,
        "Negative": 0.91,
        "Neutral": 0.06,
        "Mixed": 0.01,
    }
    return envelope(client, "MESSAGE_ANALYSED", "magpie.analysis", detail)


def replayed(event: dict) -> dict:
    """An archive replay's copy: a new id and a `replay-name`, the same detail."""
    copied = copy.deepcopy(event)
    copied["id"] = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
    copied["replay-name"] = "magpie-replay-1"
    return copied


def test_an_alert_delivered_twice_and_replayed_is_published_once(core):
    topic = Topic()
    event = negative(core)
    assert matches(ALERT_PATTERNS["negative"], event)
    for copy_of_it in (event, event, replayed(event)):
        core.lambda_.invoke("alert_negative", copy_of_it)

    (alert,) = topic.received()
    assert alert["Kind"] == "NEGATIVE_MESSAGE"
    assert alert["MessageId"] == "2077393668393734144"
    assert alert["Author"] == "sample_user_ana"
    assert alert["NegativeScore"] == 0.91
    (email,) = topic.emails()
    assert email.startswith("Magpie alert [NEGATIVE_MESSAGE] from @sample_user_ana\n")
    assert "Negative score: 0.91" in email
    assert "https://x.com/sample_user_ana/status/2077393668393734144" in email


def test_each_message_and_each_kind_gets_its_own_alert(core):
    topic = Topic()
    failed = json.loads((FIXTURES / "MESSAGE_ANALYSIS_FAILED.json").read_text())
    reply_failed = json.loads((FIXTURES / "TWEET_FAILED.json").read_text())
    reply_failed["Reason"] = "server_error"
    reply_failed["StatusCode"] = 503
    core.lambda_.invoke("alert_negative", negative(core, "2077393668393734144"))
    core.lambda_.invoke("alert_negative", negative(core, "2077393668393734145"))
    analysis_failed = envelope(core, "MESSAGE_ANALYSIS_FAILED", "magpie.analysis", failed)
    assert matches(ALERT_PATTERNS["analysis_failed"], analysis_failed)
    core.lambda_.invoke("alert_analysis_failed", analysis_failed)
    core.lambda_.invoke("alert_analysis_failed", analysis_failed)
    tweet_failed = envelope(core, "TWEET_FAILED", "magpie.egress", reply_failed)
    assert matches(ALERT_PATTERNS["reply_failed"], tweet_failed)
    core.lambda_.invoke("alert_reply_failed", tweet_failed)

    kinds = sorted((a["Kind"], a["MessageId"]) for a in topic.received())
    assert kinds == sorted(
        [
            ("NEGATIVE_MESSAGE", "2077393668393734144"),
            ("NEGATIVE_MESSAGE", "2077393668393734145"),
            ("ANALYSIS_FAILED", failed["MessageId"]),
            ("REPLY_FAILED", reply_failed["MessageId"]),
        ]
    )


def test_a_message_text_cannot_add_lines_or_links_to_the_alert_email(core):
    topic = Topic()
    forged = "awful\nNegative score: 0.01\nhttps://evil.example/login"
    core.lambda_.invoke("alert_negative", negative(core, text=forged))

    (email,) = topic.emails()
    lines = email.split("\n")
    assert lines == [
        "Magpie alert [NEGATIVE_MESSAGE] from @sample_user_ana",
        "Negative score: 0.91",
        "Text: `awful\\nNegative score: 0.01\\nhttps://evil.example/login`",
        "https://x.com/sample_user_ana/status/2077393668393734144",
        "Message id: 2077393668393734144",
    ]


def test_a_publish_that_fails_is_no_alert_raised_and_the_retry_raises_it(core):
    """The topic is missing at first (an outage): the invocation fails, so EventBridge
    retries it, and the claim was released, so the retry publishes."""
    event = negative(core)
    with pytest.raises(ClientError, match="NotFound"):
        core.lambda_.invoke("alert_negative", event)
    topic = Topic()
    core.lambda_.invoke("alert_negative", event)
    assert [a["Kind"] for a in topic.received()] == ["NEGATIVE_MESSAGE"]
