"""The loop guards and both stores (SQLite locally, DynamoDB through moto) under one suite."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import boto3
import pytest
from magpie.moto_world import create_idempotency_table
from moto import mock_aws

from chalicelib.egress.guards import DynamoDbGuardStore, SqliteGuardStore
from chalicelib.egress.loop_guards import (
    AUTHOR_RATE_LIMITED,
    OWN_MESSAGE,
    THREAD_TOO_DEEP,
    LoopGuards,
    author_bucket,
)

BOT = "1876543210987654321"
ALICE, BOB = "111", "222"
# 2026-07-15 14:10:00 UTC: fifty minutes before the hour turns.
T0 = datetime(2026, 7, 15, 14, 10, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "dynamodb"])
def store_and_clock(request, tmp_path, aws_credentials):
    clock = Clock()
    if request.param == "sqlite":
        yield SqliteGuardStore(tmp_path / "guards.sqlite3", clock=clock), clock
        return
    with mock_aws():
        client = boto3.client("dynamodb")
        create_idempotency_table("magpie-idempotency")
        yield DynamoDbGuardStore(client, "magpie-idempotency", clock=clock), clock


def guards(store, clock, per_hour=3, depth=3):
    return LoopGuards(
        store,
        bot_user_id=BOT,
        replies_per_author_per_hour=per_hour,
        max_thread_depth=depth,
        clock=clock,
    )


def test_the_bot_never_answers_itself(store_and_clock):
    g = guards(*store_and_clock)
    for kind in ("MENTION", "DIRECT_MESSAGE"):
        assert g.admit(kind, BOT, None).skip_reason == OWN_MESSAGE


def test_own_message_takes_no_slot(store_and_clock):
    store, clock = store_and_clock
    g = guards(store, clock, per_hour=1)
    g.admit("MENTION", BOT, None)
    assert store.take_slot(author_bucket(BOT, clock()), 1, int(clock()) + 60)


def test_at_most_n_replies_per_author_per_hour(store_and_clock):
    store, clock = store_and_clock
    g = guards(store, clock, per_hour=3)
    verdicts = [g.admit("MENTION", ALICE, None).skip_reason for _ in range(4)]
    assert verdicts == [None, None, None, AUTHOR_RATE_LIMITED]
    # Another author has a budget of their own.
    assert g.admit("DIRECT_MESSAGE", BOB, None).skip_reason is None


def test_the_budget_renews_with_the_next_clock_hour(store_and_clock):
    store, clock = store_and_clock
    g = guards(store, clock, per_hour=1)
    assert g.admit("MENTION", ALICE, None).skip_reason is None
    clock.now += 49 * 60  # 14:59
    assert g.admit("MENTION", ALICE, None).skip_reason == AUTHOR_RATE_LIMITED
    clock.now += 60  # 15:00
    assert g.admit("MENTION", ALICE, None).skip_reason is None


def test_a_reply_not_posted_gives_its_slot_back(store_and_clock):
    store, clock = store_and_clock
    g = guards(store, clock, per_hour=1)
    admission = g.admit("MENTION", ALICE, None)
    g.not_posted(admission)
    g.not_posted(admission)  # giving back twice never creates budget out of nothing
    assert g.admit("MENTION", ALICE, None).skip_reason is None
    assert g.admit("MENTION", ALICE, None).skip_reason == AUTHOR_RATE_LIMITED


def test_thread_depth_counts_our_posts_in_the_chain(store_and_clock):
    store, clock = store_and_clock
    g = guards(store, clock, per_hour=100, depth=3)
    parent = None  # a fresh mention of the bot: our reply is 1 deep
    for expected_depth, our_post in ((1, "r1"), (2, "r2"), (3, "r3")):
        admission = g.admit("MENTION", ALICE, parent)
        assert (admission.skip_reason, admission.depth) == (None, expected_depth)
        g.posted(admission, our_post)
        parent = our_post  # the other bot answers our post
    refused = g.admit("MENTION", ALICE, parent)
    assert (refused.skip_reason, refused.depth) == (THREAD_TOO_DEEP, 4)


def test_a_refused_deep_reply_takes_no_slot(store_and_clock):
    store, clock = store_and_clock
    g = guards(store, clock, per_hour=1, depth=1)
    g.posted(g.admit("MENTION", BOB, None), "r1")
    assert g.admit("MENTION", ALICE, "r1").skip_reason == THREAD_TOO_DEEP
    assert g.admit("MENTION", ALICE, None).skip_reason is None


def test_replies_to_other_peoples_posts_start_at_depth_one(store_and_clock):
    g = guards(*store_and_clock)
    admission = g.admit("MENTION", ALICE, "someone-elses-post")
    assert (admission.skip_reason, admission.depth) == (None, 1)


def test_direct_messages_have_no_depth_and_record_none(store_and_clock):
    store, clock = store_and_clock
    g = guards(store, clock)
    admission = g.admit("DIRECT_MESSAGE", ALICE, None)
    assert admission.depth is None
    g.posted(admission, "dm-event-1")
    assert store.depth_of("dm-event-1") is None


def test_remembered_depths_expire(store_and_clock):
    store, clock = store_and_clock
    store.remember_depth("r1", 2, int(clock()) + 10)
    assert store.depth_of("r1") == 2
    clock.now += 11
    assert store.depth_of("r1") is None


def test_an_intent_to_post_is_kept_until_forgotten_or_expired(store_and_clock):
    store, clock = store_and_clock
    assert store.intent_at("MENTION:1") is None
    store.mark_intent("MENTION:1", clock() - 0.5, int(clock()) + 10)
    assert store.intent_at("MENTION:1") == clock() - 0.5
    assert store.intent_at("MENTION:2") is None
    store.forget_intent("MENTION:1")
    assert store.intent_at("MENTION:1") is None
    store.mark_intent("MENTION:1", clock(), int(clock()) + 10)
    clock.now += 11
    assert store.intent_at("MENTION:1") is None


def test_concurrent_slot_takers_never_exceed_the_limit(tmp_path):
    store = SqliteGuardStore(tmp_path / "guards.sqlite3")
    results: list[bool] = []
    lock = threading.Lock()

    def take():
        taken = store.take_slot("alice:2026071514", 5, 2_000_000_000)
        with lock:
            results.append(taken)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 5


def test_author_bucket_is_the_utc_hour():
    assert author_bucket(ALICE, T0) == "111:2026071514"
