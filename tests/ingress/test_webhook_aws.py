"""The ingress app through chalice.test.Client on the AWS backend, with moto.

An EventBridge rule with an SQS target is the tap: it shows exactly what was published.
Signatures are computed here from the fixture bytes.
"""

from __future__ import annotations

import json

import pytest
from chalice.test import Client
from magpie.apps import load_app
from magpie.moto_world import create_bus, create_idempotency_table, create_twitter_secret
from moto import mock_aws

from chalicelib import backend
from chalicelib.ingress.signature import sign
from tests.conftest import BOT_ID, SAMPLES, load_sample

AWS_SECRET = "aws-consumer-secret"


@pytest.fixture
def aws(aws_credentials, monkeypatch):
    with mock_aws():
        monkeypatch.setenv("MAGPIE_BACKEND", "aws")
        monkeypatch.setenv("TWITTER_BOT_USER_ID", BOT_ID)
        monkeypatch.setenv("TWITTER_SECRET_ID", "TwitterSecret")
        monkeypatch.setenv("IDEMPOTENCY_TABLE", "magpie-idempotency")
        monkeypatch.setenv("EVENT_BUS_NAME", "magpie")
        backend.reset()
        create_twitter_secret(AWS_SECRET)
        create_idempotency_table()
        tap = create_bus()
        yield tap
        backend.reset()


@pytest.fixture
def client():
    with Client(load_app("ingress").app) as c:
        yield c


def post(client, body: bytes, signature: str | None = "auto", **headers):
    headers = {"content-type": "application/json", **headers}
    if signature == "auto":
        signature = sign(AWS_SECRET, body)
    if signature is not None:
        headers["x-twitter-webhooks-signature"] = signature
    return client.http.post("/twitter", headers=headers, body=body)


def types(published: list[dict]) -> list[str]:
    return sorted(e["detail-type"] for e in published)


def test_crc_uses_the_secret_from_secrets_manager(aws, client):
    response = client.http.get("/twitter?crc_token=challenge-1")
    assert response.status_code == 200
    assert json.loads(response.body) == {"response_token": sign(AWS_SECRET, b"challenge-1")}


def test_crc_oracle_attempt_is_refused(aws, client):
    forged = '{"for_user_id":"1876543210987654321","tweet_create_events":[]}'
    from urllib.parse import quote

    response = client.http.get("/twitter?crc_token=" + quote(forged))
    assert response.status_code == 400
    assert "response_token" not in response.body.decode()


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_every_sample_publishes_its_raw_events_and_messages(aws, client, path):
    body = path.read_bytes()
    response = post(client, body)
    assert response.status_code == 200
    published = aws.drain()
    expected_messages = {
        "mention-plain.json": 1,
        "mention-two-photos.json": 1,
        "direct-message.json": 1,
        "direct-message-with-photo.json": 1,
        "xaa-post-mention-create.json": 1,
        "xaa-post-reply-create.json": 1,
        "xaa-dm-received.json": 1,
        "mention-joke.json": 1,
        "mention-negative.json": 1,
    }.get(path.name, 0)
    assert types(published).count("MESSAGE_RECEIVED") == expected_messages
    raw = [e for e in published if e["detail-type"].startswith("TWITTER_")]
    assert len(raw) == 1
    assert all(e["source"] == "magpie.ingress" for e in published)


def test_mention_detail_on_the_bus(aws, client):
    post(client, (SAMPLES / "mention-two-photos.json").read_bytes())
    published = aws.drain()
    (message,) = [e["detail"] for e in published if e["detail-type"] == "MESSAGE_RECEIVED"]
    assert message["Kind"] == "MENTION"
    assert message["Twitter"] == {
        "UserId": "1712345678901234567",
        "TweetId": "2077393668393734144",
        "MentionedUserIds": [],
    }
    assert len(message["ImageUrls"]) == 2
    (raw,) = [e["detail"] for e in published if e["detail-type"] == "TWITTER_TWEETED"]
    assert raw == load_sample("mention-two-photos.json")["tweet_create_events"][0]


def test_same_message_delivered_twice_gives_one_message_received(aws, client):
    body = (SAMPLES / "mention-plain.json").read_bytes()
    first, second = post(client, body), post(client, body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert json.loads(second.body)["duplicates"] == 1
    published = aws.drain()
    assert types(published) == ["MESSAGE_RECEIVED", "TWITTER_TWEETED", "TWITTER_TWEETED"]


def test_x_activity_copy_of_a_classic_delivery_is_a_duplicate(aws, client):
    post(client, (SAMPLES / "mention-plain.json").read_bytes())
    post(client, (SAMPLES / "xaa-post-mention-create.json").read_bytes())
    assert types(aws.drain()).count("MESSAGE_RECEIVED") == 1


def test_batch_of_25_likes_is_published_in_batches_of_ten(aws, client):
    payload = load_sample("favorite.json")
    like = payload["favorite_events"][0]
    payload["favorite_events"] = [dict(like, id=f"like-{i}") for i in range(25)]
    calls = []
    events_client = backend.aws_client("events")
    events_client.meta.events.register(
        "provide-client-params.events.PutEvents",
        lambda params, **_: calls.append(len(params["Entries"])),
    )
    response = post(client, json.dumps(payload).encode())
    assert response.status_code == 200
    assert calls == [10, 10, 5]
    assert types(aws.drain()) == ["TWITTER_FAVOURITED"] * 25


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=AAAA", sign("wrong-secret", b"{}"), "sha256=" + "A" * 43 + "="],
)
def test_forged_and_missing_signatures_are_401_and_publish_nothing(aws, client, signature):
    response = post(client, (SAMPLES / "mention-plain.json").read_bytes(), signature=signature)
    assert response.status_code == 401
    assert aws.drain() == []


def test_signature_of_another_body_is_refused(aws, client):
    body = (SAMPLES / "mention-plain.json").read_bytes()
    tampered = body.replace(b"hi! what can you do?", b"tell everyone my secret")
    response = post(client, tampered, signature=sign(AWS_SECRET, body))
    assert response.status_code == 401
    assert aws.drain() == []


def test_oversize_body_is_413(aws, client):
    body = b'{"padding": "' + b"x" * (1024 * 1024) + b'"}'
    response = post(client, body)
    assert response.status_code == 413
    assert aws.drain() == []


@pytest.mark.parametrize("body", [b"not json", b"{", b"\xff\xfe", b"[1, 2]", b'"text"'])
def test_invalid_json_is_400(aws, client, body):
    response = post(client, body)
    assert response.status_code == 400
    assert aws.drain() == []


def test_deeply_nested_json_is_400(aws, client):
    body = b'{"a":' * 100 + b"1" + b"}" * 100
    assert post(client, body).status_code == 400


def test_publish_failure_is_5xx_so_x_retries_and_nothing_is_marked_seen(aws, client, monkeypatch):
    body = (SAMPLES / "mention-plain.json").read_bytes()
    monkeypatch.setenv("EVENT_BUS_NAME", "no-such-bus")
    backend.event_bus.cache_clear()
    backend.settings.cache_clear()
    response = post(client, body)
    assert response.status_code == 503
    # X retries once the bus is back: the message is published then, not lost as a duplicate.
    monkeypatch.setenv("EVENT_BUS_NAME", "magpie")
    backend.event_bus.cache_clear()
    backend.settings.cache_clear()
    assert post(client, body).status_code == 200
    assert types(aws.drain()) == ["MESSAGE_RECEIVED", "TWITTER_TWEETED"]


@pytest.mark.parametrize(
    ("field", "value"), [("text", 5), ("lang", ["en"]), ("extended_tweet", {"full_text": 7})]
)
def test_wrongly_typed_fields_never_reach_a_message(aws, client, field, value):
    payload = load_sample("mention-plain.json")
    payload["tweet_create_events"][0][field] = value
    response = post(client, json.dumps(payload).encode())
    assert response.status_code == 200
    published = aws.drain()
    assert "TWITTER_TWEETED" in types(published)
    for message in [e["detail"] for e in published if e["detail-type"] == "MESSAGE_RECEIVED"]:
        assert isinstance(message["Text"], str) and "Language" not in message


def test_x_activity_dm_on_eventbridge(aws, client):
    post(client, (SAMPLES / "xaa-dm-received.json").read_bytes())
    published = aws.drain()
    (message,) = [e["detail"] for e in published if e["detail-type"] == "MESSAGE_RECEIVED"]
    assert message["Kind"] == "DIRECT_MESSAGE"
    assert message["Author"] == "sample_user_ana"
    assert message["Text"] == "Tell me a fact about space & stars, please"


def test_an_item_over_the_entry_limit_is_published_truncated_on_eventbridge_too(aws, client):
    """Before, PutEvents refused it and the answer was 503: X would retry it forever."""
    payload = load_sample("mention-plain.json")
    payload["tweet_create_events"][0]["text"] += " " + "é" * 100_000  # 600 KB once escaped
    response = post(client, json.dumps(payload, ensure_ascii=False).encode())
    assert response.status_code == 200
    published = aws.drain()
    (raw,) = [e["detail"] for e in published if e["detail-type"] == "TWITTER_TWEETED"]
    assert raw["magpie_truncated"]["bytes"] > 256 * 1024
    assert types(published) == ["MESSAGE_RECEIVED", "TWITTER_TWEETED"]
