"""Each way ingress used to fail on what X really sends, through the real webhook (signed POST).

Every delivery starts from X's documentation examples (tests/fixtures/x-docs/) or the bundled
samples, changed only where the case needs it.
"""

from __future__ import annotations

import json
import logging

import pytest

from chalicelib.events import MENTION, MessageReceived, TwitterIds
from chalicelib.ingress.activity import MAX_ITEMS_PER_DELIVERY
from chalicelib.ingress.webhook import MAX_EVENT_BYTES, EmptyMessageId, message_key
from tests.conftest import BOT_ID, load_sample
from tests.ingress.conftest import detail_types, details
from tests.ingress.xdocs import XAA_USER, aaa, xaa


def dm_received(message_id: str, text: str = "hello!") -> dict:
    delivery = xaa("dm.received")
    event = delivery["data"]["payload"]["direct_message_events"][0]
    event["id"] = message_id
    event["message_create"]["message_data"]["text"] = text
    return delivery


# --- X Activity dm.received --------------------------------------------------------------------


def test_every_x_activity_dm_is_answered_not_dropped_as_a_duplicate_of_the_first(webhook_for):
    webhook = webhook_for(XAA_USER)
    for message_id in ("2080765901528535096", "2080765901528535097"):
        assert webhook.post(dm_received(message_id)).status_code == 200
    messages = details(webhook.published(), "MESSAGE_RECEIVED")
    assert [m["MessageId"] for m in messages] == ["2080765901528535096", "2080765901528535097"]
    assert all(m["Twitter"]["UserId"] == "2222222222222222222" for m in messages)


def test_the_bots_own_x_activity_dm_is_kept_but_not_answered(webhook_for):
    webhook = webhook_for(XAA_USER)
    assert webhook.post(xaa("dm.sent")).status_code == 200
    assert detail_types(webhook.published()) == ["TWITTER_DM_RECEIVED"]


def test_an_idempotency_key_is_never_built_from_an_empty_id():
    message = MessageReceived(
        Text="hi", Author="a", Twitter=TwitterIds(UserId="1"), MessageId=" ", Kind=MENTION
    )
    with pytest.raises(EmptyMessageId):
        message_key(message)
    assert message_key(MessageReceived(**{**message.__dict__, "MessageId": "7"})) == "MENTION:7"


# --- quotes --------------------------------------------------------------------


def test_a_quote_that_mentions_the_bot_is_answered(webhook_for):
    delivery = xaa("post.quote.create")
    post = delivery["data"]["payload"]
    post["text"] = "@ExampleUser what do you make of this? https://t.co/xxxxxxxx"
    post["entities"]["mentions"] = [
        {"start": 0, "end": 12, "username": "ExampleUser", "id": XAA_USER}
    ]
    webhook = webhook_for(XAA_USER)
    assert webhook.post(delivery).status_code == 200
    (message,) = details(webhook.published(), "MESSAGE_RECEIVED")
    assert message["Text"] == post["text"]


def test_a_reply_and_a_mention_of_the_same_post_make_one_message(webhook_for):
    """A reply that also names the bot fires post.reply.create and post.mention.create."""
    reply = xaa("post.reply.create")
    mention = json.loads(json.dumps(reply))
    mention["data"]["event_type"] = "post.mention.create"
    webhook = webhook_for(XAA_USER)
    assert webhook.post(reply).status_code == webhook.post(mention).status_code == 200
    assert detail_types(webhook.published()) == ["MESSAGE_RECEIVED", *["TWITTER_TWEETED"] * 2]


# --- deliveries for another account ----------------------------------------------------------


def test_a_delivery_for_another_account_is_kept_but_not_answered(webhook_for):
    webhook = webhook_for(BOT_ID)
    for delivery in (load_sample("mention-plain.json"), xaa("post.mention.create")):
        if "for_user_id" in delivery:
            delivery["for_user_id"] = "999"
        assert webhook.post(delivery).status_code == 200
    assert detail_types(webhook.published()) == ["TWITTER_TWEETED", "TWITTER_TWEETED"]


# --- HTML entities --------------------------------------------------------------------

ESCAPED, DECODED = "fish &amp; chips &lt;3 &gt;_&gt;", "fish & chips <3 >_>"


def test_entities_are_decoded_in_account_activity_posts_and_dms(webhook_for):
    mention = load_sample("mention-plain.json")
    mention["tweet_create_events"][0]["text"] = "@acme_helper_bot " + ESCAPED
    dm = load_sample("direct-message.json")
    dm["direct_message_events"][0]["message_create"]["message_data"]["text"] = ESCAPED
    webhook = webhook_for(BOT_ID)
    assert webhook.post(mention).status_code == webhook.post(dm).status_code == 200
    published = webhook.published()
    assert [m["Text"] for m in details(published, "MESSAGE_RECEIVED")] == [
        "@acme_helper_bot " + DECODED,
        DECODED,
    ]
    (raw,) = details(published, "TWITTER_TWEETED")
    assert raw["text"].endswith(ESCAPED)  # the raw item stays as X sent it


def test_entities_are_decoded_in_x_activity_posts_and_dms(webhook_for):
    mention = xaa("post.mention.create")
    mention["data"]["payload"]["text"] = "hey @ExampleUser " + ESCAPED
    webhook = webhook_for(XAA_USER)
    assert webhook.post(mention).status_code == 200
    assert webhook.post(dm_received("2080765901528535099", ESCAPED)).status_code == 200
    assert [m["Text"] for m in details(webhook.published(), "MESSAGE_RECEIVED")] == [
        "hey @ExampleUser " + DECODED,
        DECODED,
    ]


# --- unknown keys and types --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "detail_type"),
    [
        ("unfollow_events", "TWITTER_UNFOLLOWED"),
        ("unblock_events", "TWITTER_UNBLOCKED"),
        ("unmute_events", "TWITTER_UNMUTED"),
        ("bookmark_events", "TWITTER_ACTIVITY"),
    ],
)
def test_documented_and_unknown_account_activity_keys_are_kept(webhook_for, key, detail_type):
    follow = aaa("follow_events")
    item = follow["follow_events"][0]
    delivery = {"for_user_id": follow["for_user_id"], key: [item]}
    webhook = webhook_for(follow["for_user_id"])
    assert webhook.post(delivery).status_code == 200
    (raw,) = webhook.published()
    assert raw["detail-type"] == detail_type
    if detail_type == "TWITTER_ACTIVITY":
        assert raw["detail"] == {"event_type": key, "payload": [item], "for_user_id": "2244994945"}


def test_an_item_of_an_unknown_type_under_a_known_key_is_kept(webhook_for):
    delivery = aaa("follow_events")
    delivery["follow_events"][0]["type"] = "follow_request"
    webhook = webhook_for(delivery["for_user_id"])
    assert webhook.post(delivery).status_code == 200
    (raw,) = webhook.published()
    assert raw["detail-type"] == "TWITTER_ACTIVITY"
    assert raw["detail"]["payload"]["type"] == "follow_request"


# --- timestamps --------------------------------------------------------------------


@pytest.mark.parametrize(
    "created_at",
    ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2001-01-01T00:00:00Z", "soon"],
)
def test_an_x_activity_time_out_of_range_or_unreadable_is_400(webhook_for, created_at):
    delivery = xaa("post.mention.create")
    delivery["data"]["payload"]["created_at"] = created_at
    webhook = webhook_for(XAA_USER)
    response = webhook.post(delivery)
    assert response.status_code == 400
    assert "time" in json.loads(response.body)["error"]
    assert webhook.published() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timestamp_ms", 100000000000000000000),
        ("timestamp_ms", "100000000000000000000"),
        ("timestamp_ms", "-1"),
        ("created_at", "Fri Dec 31 23:59:59 -0100 9999"),
        ("created_at", "yesterday"),
    ],
)
def test_an_account_activity_time_out_of_range_or_unreadable_is_400(webhook_for, field, value):
    delivery = load_sample("mention-plain.json")
    tweet = delivery["tweet_create_events"][0]
    tweet.pop("timestamp_ms", None)
    tweet[field] = value
    webhook = webhook_for(BOT_ID)
    assert webhook.post(delivery).status_code == 400
    assert webhook.published() == []


def test_a_dm_created_timestamp_out_of_range_is_400(webhook_for):
    delivery = xaa("dm.received")
    delivery["data"]["payload"]["direct_message_events"][0]["created_timestamp"] = "9" * 25
    webhook = webhook_for(XAA_USER)
    assert webhook.post(delivery).status_code == 400


def test_received_at_is_the_posts_created_at_when_there_is_no_timestamp_ms(webhook_for):
    delivery = load_sample("mention-plain.json")
    del delivery["tweet_create_events"][0]["timestamp_ms"]
    webhook = webhook_for(BOT_ID)
    assert webhook.post(delivery).status_code == 200
    (message,) = details(webhook.published(), "MESSAGE_RECEIVED")
    assert message["ReceivedAt"] == "2026-07-15T14:03:27Z"


# --- ids, authors, texts --------------------------------------------------------------------


def test_a_tweet_without_id_str_is_kept_but_never_published_as_a_message(webhook_for):
    broken = load_sample("mention-plain.json")
    del broken["tweet_create_events"][0]["id_str"]
    other = load_sample("mention-joke.json")
    del other["tweet_create_events"][0]["id_str"]
    webhook = webhook_for(BOT_ID)
    assert webhook.post(broken).status_code == webhook.post(other).status_code == 200
    assert detail_types(webhook.published()) == ["TWITTER_TWEETED", "TWITTER_TWEETED"]
    # ...and a real message afterwards is not mistaken for a duplicate of them.
    assert webhook.post(load_sample("mention-two-photos.json")).status_code == 200
    assert "MESSAGE_RECEIVED" in detail_types(webhook.published())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda t: t.update(text=5), "not a string"),
        (lambda t: t.update(text="   "), "no text and no media"),
        (lambda t: t.update(extended_tweet={"full_text": 7}), "not a string"),
        (lambda t: t.update(user={"screen_name": "ghost"}), "no author id"),
    ],
)
def test_a_message_without_usable_text_or_author_is_refused_with_a_reason(
    webhook_for, caplog, change, reason
):
    delivery = load_sample("mention-plain.json")
    change(delivery["tweet_create_events"][0])
    webhook = webhook_for(BOT_ID)
    with caplog.at_level(logging.INFO, logger="chalicelib.ingress.webhook"):
        response = webhook.post(delivery)
    assert response.status_code == 200
    assert json.loads(response.body)["skipped"] == 1
    assert detail_types(webhook.published()) == ["TWITTER_TWEETED"]
    assert reason in caplog.text


def test_an_image_only_mention_is_answered(webhook_for):
    delivery = load_sample("mention-two-photos.json")
    delivery["tweet_create_events"][0]["text"] = ""
    webhook = webhook_for(BOT_ID)
    assert webhook.post(delivery).status_code == 200
    (message,) = details(webhook.published(), "MESSAGE_RECEIVED")
    assert (message["Text"], len(message["ImageUrls"])) == ("", 2)


def test_a_lone_surrogate_is_replaced_and_reaches_the_lake(webhook_for):
    body = (
        json.dumps(load_sample("mention-plain.json"))
        .replace("hi! what can you do?", "hi \\ud83d what can you do?")
        .encode()
    )
    assert b"\\ud83d" in body
    webhook = webhook_for(BOT_ID)
    assert webhook.post(body).status_code == 200
    published = webhook.published()  # written to the lake as it goes
    (message,) = details(published, "MESSAGE_RECEIVED")
    assert message["Text"] == "@acme_helper_bot hi \ufffd what can you do?"
    assert len(webhook.lake()) == 2


def test_a_text_is_cut_to_5000_utf8_bytes_on_a_character_boundary(webhook_for):
    delivery = load_sample("mention-plain.json")
    delivery["tweet_create_events"][0]["text"] = "@acme_helper_bot " + "é" * 6000
    webhook = webhook_for(BOT_ID)
    assert webhook.post(delivery).status_code == 200
    (message,) = details(webhook.published(), "MESSAGE_RECEIVED")
    assert len(message["Text"].encode()) == 4999  # 17 ASCII bytes + 2,491 two-byte letters


# --- fan-out bound --------------------------------------------------------------------


def test_a_delivery_over_the_fan_out_bound_is_413_logged_and_publishes_nothing(webhook_for, caplog):
    likes = aaa("favorite_events")
    like = likes["favorite_events"][0]
    likes["favorite_events"] = [
        dict(like, id=f"like-{i}") for i in range(MAX_ITEMS_PER_DELIVERY + 1)
    ]
    webhook = webhook_for(likes["for_user_id"])
    with caplog.at_level(logging.WARNING, logger="chalicelib.ingress.webhook"):
        response = webhook.post(likes)
    assert response.status_code == 413
    assert f"limit {MAX_ITEMS_PER_DELIVERY}" in json.loads(response.body)["error"]
    assert "refused delivery (413)" in caplog.text
    assert webhook.published() == []


def test_a_delivery_at_the_fan_out_bound_is_accepted(webhook_for):
    likes = aaa("favorite_events")
    like = likes["favorite_events"][0]
    likes["favorite_events"] = [dict(like, id=f"like-{i}") for i in range(MAX_ITEMS_PER_DELIVERY)]
    webhook = webhook_for(likes["for_user_id"])
    assert webhook.post(likes).status_code == 200
    assert len(webhook.published()) == MAX_ITEMS_PER_DELIVERY


def test_an_item_over_eventbridges_entry_limit_is_truncated_not_a_retry_loop(webhook_for, caplog):
    delivery = load_sample("mention-plain.json")
    delivery["tweet_create_events"][0]["text"] = "@acme_helper_bot " + "x" * MAX_EVENT_BYTES
    webhook = webhook_for(BOT_ID)
    with caplog.at_level(logging.WARNING, logger="chalicelib.ingress.webhook"):
        response = webhook.post(delivery)
    assert response.status_code == 200
    assert "truncated one TWITTER_TWEETED item" in caplog.text
    published = webhook.published()
    (raw,) = details(published, "TWITTER_TWEETED")
    assert raw["magpie_truncated"]["bytes"] > MAX_EVENT_BYTES
    # The message itself fits (texts are cut to 5,000 bytes) and is still answered.
    assert len(details(published, "MESSAGE_RECEIVED")) == 1


# --- who else a post tags ------------------------------------------------------------------


def test_an_account_activity_mention_carries_everyone_else_it_tags(webhook_for):
    delivery = load_sample("mention-plain.json")
    tweet = delivery["tweet_create_events"][0]
    author = tweet["user"]["id_str"]
    tweet["entities"]["user_mentions"] += [
        {"screen_name": "carol", "id_str": "3333"},
        {"screen_name": "self", "id_str": author},
        {"screen_name": "dave", "id_str": "4444"},
    ]
    webhook = webhook_for(BOT_ID)
    assert webhook.post(delivery).status_code == 200
    (message,) = details(webhook.published(), "MESSAGE_RECEIVED")
    assert message["Twitter"]["MentionedUserIds"] == ["3333", "4444"]


def test_an_x_activity_mention_carries_everyone_else_it_tags(webhook_for):
    delivery = xaa("post.mention.create")
    delivery["data"]["payload"]["entities"]["mentions"].append({"username": "carol", "id": "3333"})
    webhook = webhook_for(XAA_USER)
    assert webhook.post(delivery).status_code == 200
    (message,) = details(webhook.published(), "MESSAGE_RECEIVED")
    assert message["Twitter"]["MentionedUserIds"] == ["3333"]
