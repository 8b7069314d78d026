"""Fan-out and the anti-corruption layer, on every sample and on the hard cases."""

from __future__ import annotations

import copy

import pytest

from chalicelib.events import DIRECT_MESSAGE, MENTION, TWITTER_DETAIL_TYPES
from chalicelib.ingress.activity import UnsupportedPayload, translate
from tests.conftest import BOT_ID, load_sample


def mention() -> dict:
    return load_sample("mention-plain.json")


def test_plain_mention_becomes_one_raw_event_and_one_message():
    result = translate(mention(), BOT_ID)
    assert [e.detail_type for e in result.raw] == ["TWITTER_TWEETED"]
    assert result.raw[0].detail == mention()["tweet_create_events"][0]  # the item unchanged
    (message,) = result.messages
    assert message.Kind == MENTION
    assert message.MessageId == "2077393608889143296"
    assert message.Twitter.TweetId == "2077393608889143296"
    assert message.Twitter.UserId == "1712345678901234567"
    assert message.Author == "sample_user_ana"
    assert message.Language == "en"
    assert message.Text == "@acme_helper_bot hi! what can you do?"
    assert message.ImageUrls == []
    assert message.ReceivedAt == "2026-07-15T14:03:27Z"


def test_two_photos_come_from_extended_entities():
    (message,) = translate(load_sample("mention-two-photos.json"), BOT_ID).messages
    assert message.ImageUrls == [
        "https://pbs.twimg.com/media/HaXmP1aWAAEq3Zk.jpg",
        "https://pbs.twimg.com/media/HaXmP1bXsAAr7Lp.jpg",
    ]


def test_long_post_uses_full_text_and_media_only_under_extended_tweet():
    payload = mention()
    tweet = payload["tweet_create_events"][0]
    tweet["truncated"] = True
    tweet["text"] = "@acme_helper_bot this is the start of a long post…"
    tweet["extended_tweet"] = {
        "full_text": "@acme_helper_bot this is the start of a long post " + "and more " * 30,
        "entities": {"user_mentions": [{"id_str": BOT_ID, "screen_name": "acme_helper_bot"}]},
        "extended_entities": {
            "media": [
                {"type": "photo", "media_url_https": f"https://pbs.twimg.com/media/long{i}.jpg"}
                for i in range(3)
            ]
        },
    }
    tweet["entities"]["user_mentions"] = []  # only the extended entities name the bot
    (message,) = translate(payload, BOT_ID).messages
    assert message.Text == tweet["extended_tweet"]["full_text"]
    assert message.ImageUrls == [f"https://pbs.twimg.com/media/long{i}.jpg" for i in range(3)]


def test_videos_are_not_treated_as_photos():
    payload = load_sample("mention-two-photos.json")
    payload["tweet_create_events"][0]["extended_entities"]["media"][1]["type"] = "video"
    (message,) = translate(payload, BOT_ID).messages
    assert message.ImageUrls == ["https://pbs.twimg.com/media/HaXmP1aWAAEq3Zk.jpg"]


def test_retweet_that_mentions_the_bot_is_not_answered():
    payload = mention()
    tweet = payload["tweet_create_events"][0]
    tweet["retweeted_status"] = copy.deepcopy(tweet)
    tweet["text"] = "RT @someone: " + tweet["text"]
    result = translate(payload, BOT_ID)
    assert [e.detail_type for e in result.raw] == ["TWITTER_TWEETED"]
    assert result.messages == []
    assert result.skipped[0][1] == "retweet"


def test_quote_post_that_mentions_the_bot_is_answered_with_its_own_text():
    payload = mention()
    tweet = payload["tweet_create_events"][0]
    tweet["is_quote_status"] = True
    tweet["text"] = "@acme_helper_bot tell me a joke about this"
    tweet["quoted_status"] = {"id_str": "1", "text": "something else", "user": {"id_str": "9"}}
    (message,) = translate(payload, BOT_ID).messages
    assert message.Text == "@acme_helper_bot tell me a joke about this"


def test_quote_of_the_bot_without_a_mention_is_not_answered():
    payload = mention()
    tweet = payload["tweet_create_events"][0]
    tweet["is_quote_status"] = True
    tweet["entities"]["user_mentions"] = []
    tweet["text"] = "look at what this bot said"
    assert translate(payload, BOT_ID).messages == []


def test_blocked_user_is_not_answered_but_still_recorded():
    payload = mention()
    payload["user_has_blocked"] = True
    result = translate(payload, BOT_ID)
    assert len(result.raw) == 1
    assert result.messages == []
    assert result.skipped == [("2077393608889143296", "author is blocked by the bot")]


def test_own_reply_is_not_answered():
    result = translate(load_sample("own-reply.json"), BOT_ID)
    assert [e.detail_type for e in result.raw] == ["TWITTER_TWEETED"]
    assert result.messages == []
    assert result.skipped[0][1] == "own post"


def test_direct_message_to_the_bot():
    (message,) = translate(load_sample("direct-message.json"), BOT_ID).messages
    assert message.Kind == DIRECT_MESSAGE
    assert message.MessageId == "2077394502808514560"
    assert message.Twitter.DirectMessageId == "2077394502808514560"
    assert message.Twitter.TweetId is None
    assert message.Author == "sample_user_ana"
    assert message.Text == "Hello bot, can you help me?"


def test_direct_message_photo_url_is_kept_for_the_media_checks():
    (message,) = translate(load_sample("direct-message-with-photo.json"), BOT_ID).messages
    assert message.ImageUrls == [
        "https://ton.twitter.com/1.1/ton/data/dm/2077394882506272768/2077394858695225347/q7XzL2mN.jpg"
    ]


def test_bots_own_direct_message_is_not_answered():
    payload = load_sample("direct-message.json")
    event = payload["direct_message_events"][0]
    event["message_create"]["sender_id"] = BOT_ID
    event["message_create"]["target"]["recipient_id"] = "1712345678901234567"
    result = translate(payload, BOT_ID)
    assert [e.detail_type for e in result.raw] == ["TWITTER_DM_RECEIVED"]
    assert result.messages == []
    assert result.skipped[0][1] == "own direct message"


def test_batch_of_25_likes_gives_25_raw_events():
    payload = load_sample("favorite.json")
    like = payload["favorite_events"][0]
    payload["favorite_events"] = [dict(like, id=f"like-{i}") for i in range(25)]
    result = translate(payload, BOT_ID)
    assert [e.detail_type for e in result.raw] == ["TWITTER_FAVOURITED"] * 25
    assert [e.detail["id"] for e in result.raw] == [f"like-{i}" for i in range(25)]
    assert result.messages == []


def test_revoke_is_a_permission_revoked_event():
    payload = {
        "for_user_id": BOT_ID,
        "user_event": {
            "revoke": {
                "date_time": "2026-07-15T14:00:00.000Z",
                "target": {"app_id": "13090192"},
                "source": {"user_id": "1712345678901234567"},
            }
        },
    }
    result = translate(payload, BOT_ID)
    assert [e.detail_type for e in result.raw] == ["TWITTER_PERMISSION_REVOKED"]
    assert result.raw[0].detail == payload["user_event"]


def test_replay_job_status_is_kept_with_its_type():
    status = {"webhook_id": "1", "job_state": "Complete", "job_state_description": "done"}
    result = translate({"replay_job_status": status}, BOT_ID)
    (raw,) = result.raw
    assert (raw.detail_type, raw.detail) == (
        "TWITTER_ACTIVITY",
        {"event_type": "replay_job_status", "payload": status},
    )


@pytest.mark.parametrize(
    ("key", "item", "detail_type"),
    [
        ("follow_events", {"type": "follow"}, "TWITTER_FOLLOWED"),
        ("follow_events", {"type": "unfollow"}, "TWITTER_UNFOLLOWED"),
        ("block_events", {"type": "block"}, "TWITTER_BLOCKED"),
        ("block_events", {"type": "unblock"}, "TWITTER_UNBLOCKED"),
        ("mute_events", {"type": "mute"}, "TWITTER_MUTED"),
        ("mute_events", {"type": "unmute"}, "TWITTER_UNMUTED"),
        ("direct_message_indicate_typing_events", {"sender_id": "1"}, "TWITTER_DM_TYPING"),
        ("direct_message_mark_read_events", {"sender_id": "1"}, "TWITTER_DM_MARKED_READ"),
        ("tweet_delete_events", {"status": {"id": "1"}}, "TWITTER_DELETED"),
        ("favorite_events", {"id": "f"}, "TWITTER_FAVOURITED"),
    ],
)
def test_every_account_activity_array_maps_to_its_detail_type(key, item, detail_type):
    result = translate({"for_user_id": BOT_ID, key: [item]}, BOT_ID)
    assert [e.detail_type for e in result.raw] == [detail_type]
    assert result.raw[0].source == "magpie.ingress"


def test_every_twitter_detail_type_is_reachable():
    # Built from the parametrised cases above plus the tweet, DM, revoke and replay tests.
    reachable = {
        "TWITTER_ACTIVITY",
        "TWITTER_TWEETED",
        "TWITTER_DM_RECEIVED",
        "TWITTER_PERMISSION_REVOKED",
        "TWITTER_FOLLOWED",
        "TWITTER_UNFOLLOWED",
        "TWITTER_BLOCKED",
        "TWITTER_UNBLOCKED",
        "TWITTER_MUTED",
        "TWITTER_UNMUTED",
        "TWITTER_DM_TYPING",
        "TWITTER_DM_MARKED_READ",
        "TWITTER_DELETED",
        "TWITTER_FAVOURITED",
    }
    assert reachable == set(TWITTER_DETAIL_TYPES)


def test_x_activity_mention_maps_to_the_same_message():
    result = translate(load_sample("xaa-post-mention-create.json"), BOT_ID)
    assert [e.detail_type for e in result.raw] == ["TWITTER_TWEETED"]
    (xaa,) = result.messages
    (classic,) = translate(mention(), BOT_ID).messages
    assert (xaa.MessageId, xaa.Kind, xaa.Author, xaa.Text, xaa.Language, xaa.Twitter.UserId) == (
        classic.MessageId,
        classic.Kind,
        classic.Author,
        classic.Text,
        classic.Language,
        classic.Twitter.UserId,
    )


def test_x_activity_dm_received_reads_direct_message_events_and_the_users_map():
    payload = {
        "data": {
            "event_type": "dm.received",
            "filter": {"user_id": BOT_ID},
            "payload": {
                "direct_message_events": [
                    {
                        "type": "message_create",
                        "id": "555",
                        "created_timestamp": "1784124420250",
                        "message_create": {
                            "target": {"recipient_id": BOT_ID},
                            "sender_id": "1712345678901234567",
                            "message_data": {"text": "joke please"},
                        },
                    }
                ],
                "users": {
                    "1712345678901234567": {
                        "data": {"id": "1712345678901234567", "username": "sample_user_ana"}
                    }
                },
            },
        }
    }
    (message,) = translate(payload, BOT_ID).messages
    assert (message.Kind, message.MessageId, message.Author, message.Text) == (
        DIRECT_MESSAGE,
        "555",
        "sample_user_ana",
        "joke please",
    )
    assert message.Twitter.UserId == "1712345678901234567"


def test_x_activity_own_post_is_not_answered():
    payload = load_sample("xaa-post-mention-create.json")
    payload["data"]["payload"]["author_id"] = BOT_ID
    assert translate(payload, BOT_ID).messages == []


@pytest.mark.parametrize("payload", [[], "text", 42, None])
def test_a_body_that_is_not_an_object_is_refused(payload):
    with pytest.raises(UnsupportedPayload):
        translate(payload, BOT_ID)


@pytest.mark.parametrize(
    ("payload", "detail_types"),
    [
        ({"for_user_id": BOT_ID}, ["TWITTER_ACTIVITY"]),
        ({"something_else": []}, ["TWITTER_ACTIVITY"]),
        ({"for_user_id": "999", "tweet_create_events": []}, ["TWITTER_ACTIVITY"]),
        ({"for_user_id": BOT_ID, "tweet_create_events": [None]}, ["TWITTER_TWEETED"]),
        ({"for_user_id": BOT_ID, "direct_message_events": [[]]}, ["TWITTER_DM_RECEIVED"]),
        ({"data": {"event_type": "post.mention.create", "payload": [1]}}, ["TWITTER_TWEETED"]),
    ],
)
def test_odd_but_signed_deliveries_are_kept_and_answer_nothing(payload, detail_types):
    result = translate(payload, BOT_ID)
    assert [e.detail_type for e in result.raw] == detail_types
    assert result.messages == []
