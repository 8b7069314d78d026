"""Reply loops, end to end through the local stack: the bot's own posts and DMs, retweets,
two bots answering each other, and one user flooding the bot with mentions."""

from __future__ import annotations

from collections import Counter

import pytest
from magpie import ledger
from magpie.loadtest import dm_payload, mention_payload

from tests.conftest import BOT_ID
from tests.security.stack import now_ms, running_stack

OTHER_BOT = {"id_str": "2999999999999999999", "screen_name": "other_bot"}
FLOODER = {"id_str": "2888888888888888888", "screen_name": "flooder"}


@pytest.mark.slow
def test_own_posts_own_dms_and_retweets_are_never_answered(local_env, monkeypatch):
    own = {"id_str": BOT_ID, "screen_name": "acme_helper_bot"}
    own_post = mention_payload(5000000000000000001, "hello me", 0, now_ms(), BOT_ID, author=own)
    own_dm = dm_payload(5000000000000000002, "a DM I sent", 0, now_ms(), BOT_ID)
    own_dm["direct_message_events"][0]["message_create"]["sender_id"] = BOT_ID
    retweet = mention_payload(5000000000000000003, "RT @acme_helper_bot hi", 0, now_ms(), BOT_ID)
    retweet["tweet_create_events"][0]["retweeted_status"] = {"id_str": "5000000000000000000"}
    with running_stack(local_env, monkeypatch) as stack:
        answers = [stack.deliver(payload) for payload in (own_post, own_dm, retweet)]
        assert [a["skipped"] for a in answers] == [1, 1, 1]
        assert stack.events("MESSAGE_RECEIVED") == []
        assert stack.events("SEND_TWEET") == []
        assert stack.outbox() == []


@pytest.mark.slow
def test_two_bots_answering_each_other_stop_at_the_thread_depth_limit(local_env, monkeypatch):
    """The other bot answers every reply of ours in the same thread, forever. We post at most
    MAX_BOT_THREAD_DEPTH replies in that thread, then skip, and the exchange dies out."""
    depth_limit = 3
    with running_stack(local_env, monkeypatch, MAX_BOT_THREAD_DEPTH=str(depth_limit)) as stack:
        parent = None
        for turn in range(depth_limit + 3):
            number = 5100000000000000000 + turn
            mention = mention_payload(
                number, "tell me a fact", 0, now_ms(), BOT_ID, author=OTHER_BOT, in_reply_to=parent
            )
            stack.deliver(mention)
            ours = [r for r in stack.outbox() if r["reply_to_tweet_id"] == str(number)]
            if not ours:
                break  # we stayed silent: the other bot has nothing left to answer
            parent = ours[0]["sent_id"]  # the other bot answers our reply
        skipped = [d["Reason"] for d in stack.events("REPLY_SKIPPED")]
        assert len(stack.outbox()) == depth_limit
        assert skipped == ["thread_too_deep"]
        assert turn == depth_limit  # the loop ended because we stopped answering
        report = ledger.check(local_env)
        assert report.holds and report.states == Counter(sent=depth_limit, skipped=1)


@pytest.mark.slow
def test_one_user_flooding_mentions_gets_at_most_the_hourly_replies(local_env, monkeypatch):
    limit, flood = 3, 9
    with running_stack(local_env, monkeypatch, REPLIES_PER_AUTHOR_PER_HOUR=str(limit)) as stack:
        for index in range(flood):
            number = 5200000000000000000 + index
            stack.deliver(mention_payload(number, "joke!", 0, now_ms(), BOT_ID, author=FLOODER))
        assert len(stack.outbox()) == limit
        reasons = Counter(d["Reason"] for d in stack.events("REPLY_SKIPPED"))
        assert reasons == {"author_rate_limited": flood - limit}
        # Every flooded message still has exactly one outcome: nothing lost, none twice.
        report = ledger.check(local_env)
        assert report.holds and report.states == Counter(sent=limit, skipped=flood - limit)
