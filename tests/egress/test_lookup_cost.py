"""The reply lookup after an interrupted attempt asks X for as few resources as hold the
answer: X bills a read per resource returned (chalicelib/x_prices.json), $0.010 a DM event.

Every request is checked against X's API reference (tests/egress/x_openapi.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from chalicelib.egress.lookup import XReplyLookup
from chalicelib.egress.x_client import XCredentials
from chalicelib.events import DIRECT_MESSAGE, MENTION
from chalicelib.ports import ReplyRequest
from tests.conftest import BOT_ID
from tests.egress.x_openapi import assert_documented

AUTHOR = "2244994945"
TWEET = "1850000000000000001"
TIMELINE_URL = f"https://api.twitter.com/2/users/{BOT_ID}/tweets"
DM_EVENTS_URL = f"https://api.twitter.com/2/dm_conversations/with/{AUTHOR}/dm_events"
INTENT = 1_790_000_000.0  # when the interrupted attempt recorded its intent


def lookup(now: float) -> XReplyLookup:
    keys = XCredentials("key", "secret", "token", "token-secret")
    return XReplyLookup(keys, BOT_ID, clock=lambda: now)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def query(call) -> dict[str, list[str]]:
    assert_documented(call.request)
    return parse_qs(urlsplit(call.request.url).query)


def post(post_id: str, replied_to: str) -> dict:
    return {
        "id": post_id,
        "text": "x",
        "referenced_posts": [{"type": "replied_to", "id": replied_to}],
    }


@pytest.fixture
def x():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        yield mocked


def test_a_post_lookup_asks_for_the_smallest_page_within_the_attempts_window(x):
    x.get(TIMELINE_URL, json={"data": [post("1900000000000000009", TWEET)], "meta": {}})

    found = lookup(now=INTENT + 3600).find_reply(
        ReplyRequest(MENTION, "hi", AUTHOR, TWEET), since=INTENT
    )

    assert found is not None and found.sent_id == "1900000000000000009"
    sent = query(x.calls[0])
    assert sent["max_results"] == ["5"]  # X's minimum for this endpoint
    assert sent["start_time"] == ["2026-09-21T14:13:15Z"]  # the intent, less the clock slack
    assert sent["end_time"] == ["2026-09-21T14:15:25Z"]  # the attempt could post no later


def test_a_post_lookup_just_after_the_intent_sends_no_end_time_in_the_future(x):
    x.get(TIMELINE_URL, json={"meta": {"result_count": 0}})

    assert (
        lookup(now=INTENT + 30).find_reply(ReplyRequest(MENTION, "hi", AUTHOR, TWEET), INTENT)
        is None
    )

    assert "end_time" not in query(x.calls[0])


def test_a_post_lookup_pages_on_only_until_the_reply_is_found(x):
    others = [post(f"19000000000000001{i}", "1") for i in range(5)]
    x.get(TIMELINE_URL, json={"data": others, "meta": {"next_token": "page2token000000"}})
    x.get(
        TIMELINE_URL,
        json={
            "data": [post("1900000000000000200", TWEET)],
            "meta": {"next_token": "page3token000000"},
        },
    )

    found = lookup(now=INTENT + 3600).find_reply(ReplyRequest(MENTION, "hi", AUTHOR, TWEET), INTENT)

    assert found is not None and found.sent_id == "1900000000000000200"
    assert len(x.calls) == 2  # page3 is never asked for: 6 posts read, not 100
    assert query(x.calls[1])["pagination_token"] == ["page2token000000"]


def dm(event_id: str, sender: str, text: str, at: float) -> dict:
    return {
        "id": event_id,
        "event_type": "MessageCreate",
        "text": text,
        "sender_id": sender,
        "created_at": iso(at),
    }


def test_a_dm_lookup_reads_one_event_at_a_time_and_stops_at_our_reply(x):
    x.get(
        DM_EVENTS_URL,
        json={
            "data": [dm("e3", AUTHOR, "thanks", INTENT + 9)],
            "meta": {"next_token": "n2nextpagetoken0"},
        },
    )
    x.get(
        DM_EVENTS_URL,
        json={
            "data": [dm("e2", BOT_ID, "Here is a fact.", INTENT + 1)],
            "meta": {"next_token": "n3nextpagetoken0"},
        },
    )

    found = lookup(now=INTENT + 60).find_reply(
        ReplyRequest(DIRECT_MESSAGE, "Here is a fact.", AUTHOR, None), since=INTENT
    )

    assert found is not None and found.sent_id == "e2"
    assert [query(call)["max_results"] for call in x.calls] == [["1"], ["1"]]
    assert len(x.calls) == 2  # two DM events billed ($0.020), not a page of 100 ($1.00)


def test_a_dm_lookup_stops_at_the_first_event_older_than_the_intent(x):
    x.get(
        DM_EVENTS_URL,
        json={
            "data": [dm("e1", AUTHOR, "a fact please", INTENT - 60)],
            "meta": {"next_token": "n2nextpagetoken0"},
        },
    )

    found = lookup(now=INTENT + 60).find_reply(
        ReplyRequest(DIRECT_MESSAGE, "Here is a fact.", AUTHOR, None), since=INTENT
    )

    assert found is None
    assert len(x.calls) == 1  # nothing further back can be the interrupted attempt's reply
