"""Every example on X's two webhook documentation pages, through the real webhook to the lake.

The deliveries are X's own (tests/fixtures/x-docs/); the bot is the account each example was
delivered for. Outcome per X's semantics: a MESSAGE_RECEIVED exactly for what the bot should
answer, with every field filled, and the delivery itself always on the bus and in the lake.
"""

from __future__ import annotations

import copy

import pytest

from tests.ingress.conftest import detail_types, details
from tests.ingress.xdocs import XAA_USER, aaa, v1_tweet, v1_tweet_names, v1_user, xaa, xaa_types

# --- X Activity API -----------------------------------------------------------------------

XAA_RAW = {
    "post.create": "TWITTER_TWEETED",
    "post.delete": "TWITTER_DELETED",
    "post.mention.create": "TWITTER_TWEETED",
    "post.reply.create": "TWITTER_TWEETED",
    "post.quote.create": "TWITTER_TWEETED",
    "post.repost.create": "TWITTER_TWEETED",
    "like.create": "TWITTER_FAVOURITED",
    "follow.follow": "TWITTER_FOLLOWED",
    "follow.unfollow": "TWITTER_UNFOLLOWED",
    "profile.update.bio": "TWITTER_ACTIVITY",
    "profile.update.profile_picture": "TWITTER_ACTIVITY",
    "profile.update.banner_picture": "TWITTER_ACTIVITY",
    "profile.update.screenname": "TWITTER_ACTIVITY",
    "profile.update.geo": "TWITTER_ACTIVITY",
    "profile.update.url": "TWITTER_ACTIVITY",
    "chat.received": "TWITTER_ACTIVITY",  # end-to-end encrypted: nothing we can read
    "chat.sent": "TWITTER_ACTIVITY",
    "dm.sent": "TWITTER_DM_RECEIVED",
    "dm.received": "TWITTER_DM_RECEIVED",
    "news.new": "TWITTER_ACTIVITY",
    "spaces.start": "TWITTER_ACTIVITY",
    "spaces.end": "TWITTER_ACTIVITY",
    "broadcast.start": "TWITTER_ACTIVITY",
    "broadcast.end": "TWITTER_ACTIVITY",
    "broadcast.chat": "TWITTER_ACTIVITY",
    "oauth.revoke": "TWITTER_PERMISSION_REVOKED",
}
# What X's semantics make a message for the subscribed account (ExampleUser).
XAA_MESSAGES = {
    "post.mention.create": {
        "Text": "hey @ExampleUser",
        "Author": "OtherUser",
        "Twitter": {
            "UserId": "2222222222222222222",
            "TweetId": "2080765813578191303",
            "MentionedUserIds": [],
        },
        "MessageId": "2080765813578191303",
        "Kind": "MENTION",
        "ImageUrls": [],
        "Language": "und",
        "ReceivedAt": "2026-07-24T21:23:23Z",
        "SchemaVersion": "1",
    },
    "post.reply.create": {
        "Text": "@ExampleUser Great post — thanks for sharing!",
        "Author": "2222222222222222222",  # X sent no includes: the id stands in for the name
        "Twitter": {
            "UserId": "2222222222222222222",
            "TweetId": "2090000000000000001",
            "InReplyToTweetId": "2080761390344937796",
            "InReplyToUserId": XAA_USER,
            "MentionedUserIds": [],
        },
        "MessageId": "2090000000000000001",
        "Kind": "MENTION",
        "ImageUrls": [],
        "Language": "en",
        "ReceivedAt": "2026-08-12T18:00:00Z",
        "SchemaVersion": "1",
    },
    "dm.received": {
        "Text": "hello!",
        "Author": "OtherUser",
        "Twitter": {
            "UserId": "2222222222222222222",
            "DirectMessageId": "2080765901528535096",
            "MentionedUserIds": [],
        },
        "MessageId": "2080765901528535096",
        "Kind": "DIRECT_MESSAGE",
        "ImageUrls": [],
        "ReceivedAt": "2026-07-24T21:23:44Z",
        "SchemaVersion": "1",
    },
}


def test_the_x_activity_fixtures_cover_every_example_on_the_page():
    assert set(xaa_types()) == set(XAA_RAW)


@pytest.mark.parametrize("event_type", sorted(XAA_RAW))
def test_x_activity_example_reaches_the_lake_with_the_right_outcome(webhook_for, event_type):
    webhook = webhook_for(XAA_USER)
    delivery = xaa(event_type)
    response = webhook.post(delivery)
    assert response.status_code == 200, response.body
    published = webhook.published()
    expected_message = XAA_MESSAGES.get(event_type)
    assert detail_types(published) == sorted(
        [XAA_RAW[event_type]] + (["MESSAGE_RECEIVED"] if expected_message else [])
    )
    assert details(published, XAA_RAW[event_type]) == [delivery["data"]]  # unchanged
    assert details(published, "MESSAGE_RECEIVED") == (
        [expected_message] if expected_message else []
    )
    assert {r["id"] for r in webhook.lake()} == {e["id"] for e in published}


def test_the_envelope_example_is_kept_too(webhook_for):
    webhook = webhook_for(XAA_USER)
    assert webhook.post(xaa("envelope")).status_code == 200
    assert detail_types(webhook.published()) == ["TWITTER_TWEETED"]


def _described(event_type: str, like: str) -> dict:
    """An event the page documents without an example, in the shape its text names."""
    delivery = copy.deepcopy(xaa(like))
    delivery["data"]["event_type"] = event_type
    return delivery


# "Mute events use a source / target user pair similar to follow events" (and blocks alike);
# "Same before / after payload shape as other profile events"; "The payload shape matches
# other chat events"; dm.read and dm.indicate_typing are "Legacy DM events" like dm.received.
DESCRIBED = {
    "mute.mute": ("follow.follow", "TWITTER_MUTED"),
    "mute.unmute": ("follow.unfollow", "TWITTER_UNMUTED"),
    "block.block": ("follow.follow", "TWITTER_BLOCKED"),
    "block.unblock": ("follow.unfollow", "TWITTER_UNBLOCKED"),
    "profile.update.handle": ("profile.update.screenname", "TWITTER_ACTIVITY"),
    "profile.update.verified_badge": ("profile.update.bio", "TWITTER_ACTIVITY"),
    "profile.update.affiliate_badge": ("profile.update.bio", "TWITTER_ACTIVITY"),
    "chat.conversation_join": ("chat.received", "TWITTER_ACTIVITY"),
    "dm.read": ("dm.received", "TWITTER_DM_MARKED_READ"),
    "dm.indicate_typing": ("dm.received", "TWITTER_DM_TYPING"),
}


@pytest.mark.parametrize("event_type", sorted(DESCRIBED))
def test_x_activity_types_documented_without_an_example_are_kept(webhook_for, event_type):
    webhook = webhook_for(XAA_USER)
    like, detail_type = DESCRIBED[event_type]
    delivery = _described(event_type, like)
    assert webhook.post(delivery).status_code == 200
    published = webhook.published()
    assert detail_types(published) == [detail_type]  # never a message: only DMs are answered
    assert published[0]["detail"]["event_type"] == event_type


def test_an_x_activity_type_x_adds_later_is_kept_with_its_type(webhook_for):
    webhook = webhook_for(XAA_USER)
    delivery = _described("list.member.add", "profile.update.bio")
    assert webhook.post(delivery).status_code == 200
    (raw,) = details(webhook.published(), "TWITTER_ACTIVITY")
    assert raw["event_type"] == "list.member.add"


# --- Account Activity API -----------------------------------------------------------------

AAA_RAW = {
    "tweet_create_events": "TWITTER_TWEETED",
    "tweet_create_events-mentions": "TWITTER_TWEETED",
    "tweet_create_events-longform": "TWITTER_TWEETED",
    "favorite_events": "TWITTER_FAVOURITED",
    "follow_events": "TWITTER_FOLLOWED",
    "unfollow_events": "TWITTER_UNFOLLOWED",
    "block_events": "TWITTER_BLOCKED",
    "unblock_events": "TWITTER_UNBLOCKED",
    "mute_events": "TWITTER_MUTED",
    "unmute_events": "TWITTER_UNMUTED",
    "user_event": "TWITTER_PERMISSION_REVOKED",
    "direct_message_events": "TWITTER_DM_RECEIVED",
    "direct_message_indicate_typing_events": "TWITTER_DM_TYPING",
    "direct_message_mark_read_events": "TWITTER_DM_MARKED_READ",
    "tweet_delete_events": "TWITTER_DELETED",
}


def test_the_account_activity_fixtures_cover_every_example_on_the_page():
    from tests.ingress.xdocs import aaa_names

    assert set(aaa_names()) == set(AAA_RAW)


def _subscribed(delivery: dict) -> str:
    # The revoke example names no for_user_id: the user who revoked is the subscribed one.
    return delivery.get("for_user_id") or delivery["user_event"]["revoke"]["source"]["user_id"]


@pytest.mark.parametrize("name", sorted(AAA_RAW))
def test_account_activity_example_reaches_the_lake(webhook_for, name):
    delivery = aaa(name)
    webhook = webhook_for(_subscribed(delivery))
    response = webhook.post(delivery)
    assert response.status_code == 200, response.body
    published = webhook.published()
    messages = details(published, "MESSAGE_RECEIVED")
    raw = [e["detail"] for e in published if e["detail-type"] != "MESSAGE_RECEIVED"]
    assert [e["detail-type"] for e in published if e["detail-type"] != "MESSAGE_RECEIVED"] == [
        AAA_RAW[name]
    ]
    key = next(k for k in delivery if k not in ("for_user_id", "user_has_blocked", "users", "apps"))
    assert raw == (delivery[key] if isinstance(delivery[key], list) else [delivery[key]])
    # Only the DM example is addressed to its subscriber; every Post example in the data
    # dictionary is the subscriber's own (@XDevelopers) or mentions someone else.
    assert len(messages) == (1 if name == "direct_message_events" else 0)
    assert {r["id"] for r in webhook.lake()} == {e["id"] for e in published}


def test_account_activity_direct_message_fields(webhook_for):
    webhook = webhook_for("4337869213")
    webhook.post(aaa("direct_message_events"))
    (message,) = details(webhook.published(), "MESSAGE_RECEIVED")
    assert message == {
        "Text": "Hello World!",
        "Author": "furiouscamper",
        "Twitter": {
            "UserId": "3001969357",
            "DirectMessageId": "954491830116155396",
            "MentionedUserIds": [],
        },
        "MessageId": "954491830116155396",
        "Kind": "DIRECT_MESSAGE",
        "ImageUrls": [],
        "ReceivedAt": "2018-01-19T23:12:40Z",
        "SchemaVersion": "1",
    }


@pytest.mark.parametrize("tweet", v1_tweet_names())
def test_every_data_dictionary_post_by_the_subscriber_is_kept_and_not_answered(webhook_for, tweet):
    delivery = aaa("tweet_create_events", tweet=tweet)
    webhook = webhook_for(delivery["for_user_id"])
    response = webhook.post(delivery)
    assert response.status_code == 200
    published = webhook.published()
    assert detail_types(published) == ["TWITTER_TWEETED"]
    assert published[0]["detail"] == v1_tweet(tweet)


def _mention_for_the_mentioned_account(user_has_blocked: str) -> tuple[dict, str]:
    """The "@mentions" example carrying the data dictionary's Post reply, which mentions
    @PennMedCDH: the delivery X makes to PennMedCDH's subscription."""
    delivery = aaa("tweet_create_events-mentions", tweet="post-reply")
    (mentioned,) = delivery["tweet_create_events"][0]["entities"]["user_mentions"]
    delivery["for_user_id"] = mentioned["id_str"]
    delivery["user_has_blocked"] = user_has_blocked
    return delivery, mentioned["id_str"]


def test_a_mention_with_user_has_blocked_false_as_a_string_is_answered(webhook_for):
    delivery, bot = _mention_for_the_mentioned_account("false")
    webhook = webhook_for(bot)
    assert webhook.post(delivery).status_code == 200
    (message,) = details(webhook.published(), "MESSAGE_RECEIVED")
    tweet = v1_tweet("post-reply")
    assert message["Text"] == tweet["text"]
    assert (message["Author"], message["Twitter"]["UserId"]) == ("XDevelopers", "2244994945")
    assert message["MessageId"] == "1296887316556980230"
    assert message["Twitter"]["InReplyToTweetId"] == tweet["in_reply_to_status_id_str"]
    assert message["ReceivedAt"] == "2020-08-21T19:10:05Z"  # the Post's created_at


@pytest.mark.parametrize("flag", ["true", "True", True])
def test_a_mention_from_a_user_the_bot_blocked_is_kept_but_not_answered(webhook_for, flag):
    delivery, bot = _mention_for_the_mentioned_account(flag)
    webhook = webhook_for(bot)
    assert webhook.post(delivery).status_code == 200
    assert detail_types(webhook.published()) == ["TWITTER_TWEETED"]


def test_is_blocked_by_on_a_mention_means_the_bot_blocked_the_author(webhook_for):
    delivery, bot = _mention_for_the_mentioned_account("false")
    del delivery["user_has_blocked"]
    delivery["is_blocked_by"] = "true"
    webhook = webhook_for(bot)
    assert webhook.post(delivery).status_code == 200
    assert detail_types(webhook.published()) == ["TWITTER_TWEETED"]


def test_a_longform_post_mentioning_the_bot_after_280_characters_is_answered_in_full(webhook_for):
    delivery = aaa("tweet_create_events-longform")
    tweet = delivery["tweet_create_events"][0]
    bot = tweet["extended_tweet"]["entities"]["user_mentions"][0]["id_str"]  # @xai
    delivery["for_user_id"] = bot
    webhook = webhook_for(bot)
    assert webhook.post(delivery).status_code == 200
    (message,) = details(webhook.published(), "MESSAGE_RECEIVED")
    assert message["Text"] == tweet["extended_tweet"]["full_text"]
    assert message["Author"] == v1_user()["screen_name"]
    assert message["ReceivedAt"] == "2025-05-19T14:01:46Z"


def test_a_reply_to_the_bot_is_answered_without_an_explicit_mention(webhook_for):
    """Account Activity delivers "Replies (to or from user)": the data dictionary's Post reply
    answers @XDevelopers; here it is written by the DM example's sender instead."""
    delivery = aaa("tweet_create_events", tweet="post-reply")
    tweet = delivery["tweet_create_events"][0]
    tweet["user"] = aaa("direct_message_events")["users"]["3001969357"] | {"id_str": "3001969357"}
    webhook = webhook_for(delivery["for_user_id"])
    assert webhook.post(delivery).status_code == 200
    (message,) = details(webhook.published(), "MESSAGE_RECEIVED")
    assert (message["Author"], message["Twitter"]["InReplyToUserId"]) == (
        "furiouscamper",
        "2244994945",
    )
