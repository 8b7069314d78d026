"""Signed deliveries of shapes X never sends: each gets a clear answer and loses nothing.

From the held-out attack review (docs/RELIABILITY.md, "Attacks and bad input"): a media key
that is a list or an object, a body whose items grow past EventBridge's entry limit when
re-serialised, and NaN or Infinity in a body. The AWS path runs the ingress app on moto's
EventBridge, where an oversized entry really fails PutEvents.
"""

from __future__ import annotations

import json

import pytest

from chalicelib.bus.envelope import MAX_ENTRY_BYTES, entry_bytes
from chalicelib.events import OutgoingEvent
from tests.conftest import BOT_ID, load_sample
from tests.ingress.conftest import details, webhook_for  # noqa: F401  (a fixture)
from tests.ingress.test_webhook_aws import aws, client, post  # noqa: F401  (fixtures)


def mention_with_media(media_keys: list, media: list) -> dict:
    delivery = load_sample("xaa-post-mention-create.json")
    delivery["data"]["payload"]["attachments"] = {"media_keys": media_keys}
    delivery["data"]["includes"]["media"] = media
    return delivery


PHOTO = {"media_key": "3_1", "type": "photo", "url": "https://pbs.twimg.com/media/a.jpg"}


@pytest.mark.parametrize(
    ("media_keys", "media"),
    [
        ([[1]], [PHOTO]),
        (["3_1", {"k": 1}], [PHOTO]),
        (["3_1"], [{"media_key": {"k": 1}, "type": "photo", "url": "https://x.example/b"}, PHOTO]),
        (["3_1"], [{"media_key": ["3_1"], "type": "photo"}, PHOTO]),
    ],
    ids=["key-is-a-list", "key-is-an-object", "media-key-is-an-object", "media-key-is-a-list"],
)
def test_a_media_key_that_is_not_a_string_names_no_photo_and_is_not_a_500(
    webhook_for,  # noqa: F811
    media_keys,
    media,
):
    webhook = webhook_for(BOT_ID)
    response = webhook.post(mention_with_media(media_keys, media))
    assert response.status_code == 200, response.body
    published = webhook.published()
    (message,) = details(published, "MESSAGE_RECEIVED")
    expected = [PHOTO["url"]] if "3_1" in media_keys else []
    assert message.get("ImageUrls", []) == expected
    # The raw event keeps X's item unchanged, odd keys and all.
    (raw,) = details(published, "TWITTER_TWEETED")
    assert raw["payload"]["attachments"]["media_keys"] == media_keys


def growing_delivery() -> bytes:
    """A mention whose raw item is under 87 KB as sent and about 4.5 times that once
    re-serialised: each `1e15` is written back as `1000000000000000.0`."""
    delivery = load_sample("mention-plain.json")
    body = json.dumps(delivery)
    numbers = ",".join(["1e15"] * 17_000)
    body = body.replace(
        '"tweet_create_events": [{', '"tweet_create_events": [{"n": [' + numbers + "], ", 1
    )
    assert len(body) < MAX_ENTRY_BYTES // 3  # under the old code's threshold for measuring
    return body.encode()


def test_an_item_that_grows_past_the_entry_limit_is_kept_truncated_on_aws(aws, client):  # noqa: F811
    response = post(client, growing_delivery())
    assert response.status_code == 200, response.body
    published = aws.drain()
    (message,) = [e["detail"] for e in published if e["detail-type"] == "MESSAGE_RECEIVED"]
    assert (
        message["MessageId"]
        == load_sample("mention-plain.json")["tweet_create_events"][0]["id_str"]
    )
    (raw,) = [e["detail"] for e in published if e["detail-type"] == "TWITTER_TWEETED"]
    truncated = raw["magpie_truncated"]
    assert truncated["bytes"] > MAX_ENTRY_BYTES
    assert truncated["excerpt"].startswith('{"n":[1000000000000000.0,')
    assert raw["id_str"] == message["MessageId"]


def test_an_item_that_grows_past_the_entry_limit_is_kept_truncated_locally(webhook_for):  # noqa: F811
    webhook = webhook_for(BOT_ID)
    response = webhook.post(growing_delivery())
    assert response.status_code == 200, response.body
    published = webhook.published()
    assert len(details(published, "MESSAGE_RECEIVED")) == 1
    (raw,) = details(published, "TWITTER_TWEETED")
    assert raw["magpie_truncated"]["limit"] == MAX_ENTRY_BYTES
    stand_in = OutgoingEvent("magpie.ingress", "TWITTER_TWEETED", raw)
    assert entry_bytes(stand_in) <= MAX_ENTRY_BYTES
    assert json.loads(response.body)["events"] == 1


def test_a_message_too_large_for_its_event_is_skipped_and_the_rest_published(aws, client):  # noqa: F811
    delivery = load_sample("mention-plain.json")
    huge = json.loads(json.dumps(delivery["tweet_create_events"][0]))
    huge["id"], huge["id_str"] = 1, "1"
    # Texts are cut to 5,000 bytes, but everyone else a post tags travels with its message.
    huge["entities"]["user_mentions"] += [{"id_str": str(10**17 + n)} for n in range(15_000)]
    delivery["tweet_create_events"].append(huge)
    response = post(client, json.dumps(delivery).encode())
    assert response.status_code == 200, response.body
    assert json.loads(response.body)["skipped"] == 1
    published = aws.drain()
    messages = [e["detail"] for e in published if e["detail-type"] == "MESSAGE_RECEIVED"]
    assert [m["MessageId"] for m in messages] == [delivery["tweet_create_events"][0]["id_str"]]
    raws = [e["detail"] for e in published if e["detail-type"] == "TWITTER_TWEETED"]
    assert sorted("magpie_truncated" in r for r in raws) == [False, True]


@pytest.mark.parametrize(
    "value", ["NaN", "Infinity", "-Infinity", "1e999999"], ids=["nan", "inf", "-inf", "overflow"]
)
def test_nan_and_infinity_are_400_with_the_reason_and_never_reach_the_lake(webhook_for, value):  # noqa: F811
    webhook = webhook_for(BOT_ID)
    body = json.dumps(load_sample("mention-plain.json"))[:-1] + f', "n": {value}}}'
    response = webhook.post(body.encode())
    assert response.status_code == 400
    assert (
        "JSON does not allow" in json.loads(response.body)["error"]
        or "too large" in json.loads(response.body)["error"]
    )
    assert webhook.published() == []
    assert webhook.lake() == []
