"""The egress Chalice app on the AWS backend: moto for Secrets Manager, DynamoDB, S3, SNS and
EventBridge (an SQS "tap" rule shows what was published), `responses` for X."""

from __future__ import annotations

import json

import boto3
import pytest
import responses
from chalice.test import Client
from magpie.apps import load_app
from magpie.moto_world import (
    Tap,
    create_bus,
    create_idempotency_table,
    create_queue,
    create_twitter_secret,
)
from moto import mock_aws

from chalicelib import backend
from chalicelib.bus import PublishError
from chalicelib.bus.pattern import matches
from chalicelib.events import utc_now_iso
from tests.analysis.images import astronaut, jpeg_bytes
from tests.conftest import BOT_ID, ROOT

FIXTURE = json.loads((ROOT / "tests/fixtures/events/SEND_TWEET.json").read_text())
TWEETS_URL = "https://api.twitter.com/2/tweets"
UPLOAD_URL = "https://api.x.com/2/media/upload"
TABLE = "magpie-idempotency"
BUCKET = "magpie-media"


class Aws:
    def __init__(self, tap: Tap, alerts: Tap) -> None:
        self.tap, self.alerts = tap, alerts


@pytest.fixture
def aws(aws_credentials, monkeypatch):
    with mock_aws():
        sns = boto3.client("sns")
        topic = sns.create_topic(Name="magpie-alerts")["TopicArn"]
        env = {
            "MAGPIE_BACKEND": "aws",
            "TWITTER_BOT_USER_ID": BOT_ID,
            "TWITTER_SECRET_ID": "TwitterSecret",
            "IDEMPOTENCY_TABLE": TABLE,
            "EVENT_BUS_NAME": "magpie",
            "MEDIA_BUCKET": BUCKET,
            "ALERT_TOPIC_ARN": topic,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        backend.reset()
        create_twitter_secret("s")
        create_idempotency_table(TABLE)
        boto3.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        tap, alerts = create_bus("magpie"), create_queue("alerts")
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=alerts.arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        yield Aws(tap, alerts)
        backend.reset()


@pytest.fixture
def x():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        yield mocked


@pytest.fixture
def client(tmp_path):
    # A project folder without .chalice/config.json: the Client then adds no environment of
    # its own, and the function sees the AWS environment set up above (as the CDK sets it).
    with Client(load_app("egress").app, project_dir=str(tmp_path)) as c:
        yield c


def command(**changes) -> dict:
    base = {k: v for k, v in FIXTURE.items() if k not in ("ImageKey", "ImageKeys")}
    return {**base, "ReceivedAt": utc_now_iso(), **changes}


def invoke(client, detail: dict, source: str = "magpie.responders"):
    event = client.events.generate_cw_event(source, "SEND_TWEET", detail, resources=[])
    return client.lambda_.invoke("send_tweet", event)


def published(aws: Aws) -> list[tuple[str, str, dict]]:
    return [(e["source"], e["detail-type"], e["detail"]) for e in aws.tap.drain()]


def envelope(source: str, detail_type: str) -> dict:
    return {"source": source, "detail-type": detail_type, "detail": command()}


def test_only_send_tweet_from_the_responders_reaches_egress():
    (subscription,) = load_app("egress").app.event_sources
    pattern = subscription.event_pattern
    assert matches(pattern, envelope("magpie.responders", "SEND_TWEET"))
    for source, detail_type in [
        ("magpie.analysis", "SEND_TWEET"),
        ("magpie.ingress", "SEND_TWEET"),
        ("magpie.responders", "REPLY_SKIPPED"),
        ("magpie.egress", "TWEET_SENT"),
    ]:
        assert not matches(pattern, envelope(source, detail_type))


def test_redelivered_command_posts_once_with_keys_from_secrets_manager(aws, x, client):
    x.post(TWEETS_URL, status=201, json={"data": {"id": "1900000000000000007", "text": "x"}})

    invoke(client, command())
    invoke(client, command())

    (call,) = x.calls
    assert 'oauth_consumer_key="k"' in call.request.headers["Authorization"]
    assert 'oauth_token="t"' in call.request.headers["Authorization"]
    ((source, detail_type, detail),) = published(aws)
    assert (source, detail_type) == ("magpie.egress", "TWEET_SENT")
    assert detail["SentId"] == "1900000000000000007"
    # The guards' state lives in the idempotency table: the author's hourly slot and the
    # depth of the post we sent.
    table = boto3.client("dynamodb")
    depth = table.get_item(TableName=TABLE, Key={"id": {"S": "guard:depth:1900000000000000007"}})
    assert depth["Item"]["depth"] == {"N": "1"}
    ids = [i["id"]["S"] for i in table.scan(TableName=TABLE)["Items"]]
    slots = [i for i in ids if i.startswith(f"guard:slot:{FIXTURE['ReplyToUserId']}:")]
    assert len(slots) == 1


def test_annotated_image_is_read_from_s3_and_attached(aws, x, client):
    image = jpeg_bytes(astronaut())
    boto3.client("s3").put_object(Bucket=BUCKET, Key="annotated/x/0.jpg", Body=image)
    x.post(UPLOAD_URL, status=200, json={"data": {"id": "55"}})
    x.post(TWEETS_URL, status=201, json={"data": {"id": "1900000000000000008", "text": "x"}})

    invoke(client, command(ImageKeys=["annotated/x/0.jpg"]))

    assert image in x.calls[0].request.body
    assert json.loads(x.calls[1].request.body)["media"] == {"media_ids": ["55"]}
    ((_, _, detail),) = published(aws)
    assert detail["MediaIds"] == ["55"]


def test_401_publishes_tweet_failed_and_alerts_through_sns(aws, x, client):
    x.post(TWEETS_URL, status=401, json={"title": "Unauthorized"})

    invoke(client, command())

    ((_, detail_type, detail),) = published(aws)
    assert (detail_type, detail["StatusCode"], detail["Reason"]) == (
        "TWEET_FAILED",
        401,
        "unauthorized",
    )
    (alert,) = aws.alerts.drain()
    assert alert["Kind"] == "REPLY_FAILED"
    assert alert["MessageId"] == FIXTURE["MessageId"]


def test_a_bus_failure_after_posting_never_posts_twice(aws, x, client, monkeypatch):
    # Raised so the bus retries: the retry finds the reply made and only publishes.
    x.post(TWEETS_URL, status=201, json={"data": {"id": "1900000000000000009", "text": "x"}})
    monkeypatch.setenv("EVENT_BUS_NAME", "no-such-bus")
    backend.event_bus.cache_clear()
    backend.settings.cache_clear()
    with pytest.raises(PublishError):
        invoke(client, command())

    monkeypatch.setenv("EVENT_BUS_NAME", "magpie")
    backend.event_bus.cache_clear()
    backend.settings.cache_clear()
    invoke(client, command())

    assert len(x.calls) == 1
    ((_, detail_type, detail),) = published(aws)
    assert (detail_type, detail["SentId"]) == ("TWEET_SENT", "1900000000000000009")


def test_a_command_from_another_source_is_not_obeyed(aws, x, client):
    # Skipped with a reason, should a rule ever deliver another source's SEND_TWEET.
    invoke(client, command(), source="magpie.analysis")

    assert len(x.calls) == 0
    ((source, detail_type, detail),) = published(aws)
    assert (source, detail_type, detail["Reason"]) == (
        "magpie.egress",
        "REPLY_SKIPPED",
        "untrusted_source",
    )


def test_local_bus_turns_an_analysed_message_into_one_dry_run_reply(local_env):
    # The whole reply path on the local backend: the dispatcher routes by the apps' own
    # patterns; MESSAGE_ANALYSED is published twice (a redelivery) and answered once.
    from magpie.apps import event_subscriptions
    from magpie.dispatcher import Dispatcher, pattern_target

    from chalicelib.events import OutgoingEvent
    from chalicelib.publishing import publish

    analysed = json.loads((ROOT / "tests/fixtures/events/MESSAGE_ANALYSED.json").read_text())
    analysed.update(Text="@acme_helper_bot tell me a joke", ReceivedAt=utc_now_iso())
    analysed["Analysis"]["Images"] = []
    targets = [
        pattern_target(s.target, s.pattern, s.handler)
        for s in event_subscriptions(["responders", "egress"])
    ]
    store = backend.local_bus_store()
    dispatcher = Dispatcher(store, targets, workers=2, max_attempts=5, base_delay=0.05)
    dispatcher.start()
    try:
        for _ in range(2):
            publish([OutgoingEvent("magpie.analysis", "MESSAGE_ANALYSED", analysed)])
        assert dispatcher.wait_idle(timeout=60)
    finally:
        dispatcher.stop()

    types = [e["detail-type"] for _, e in store.events_since(0)]
    assert types.count("SEND_TWEET") == 2
    assert types.count("TWEET_SENT") == 1
    assert store.dead_letters() == []
    (reply,) = (local_env / "outbox").glob("*.json")
    assert json.loads(reply.read_text())["reply_to_tweet_id"] == analysed["Twitter"]["TweetId"]
