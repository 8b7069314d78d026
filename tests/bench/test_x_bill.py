"""The benchmark's X bill: each request and delivery priced by what X bills it as."""

from __future__ import annotations

import json

import pytest

from bench import x_bill


def reply(text: str, to: str | None = "1850000000000000001") -> tuple[str, bytes]:
    body: dict = {"text": text}
    if to:
        body["reply"] = {"in_reply_to_tweet_id": to}
    return "POST /2/tweets", json.dumps(body).encode()


def test_posts_are_priced_by_kind_a_url_twenty_times_a_summoned_reply():
    writes = x_bill.writes_from_requests(
        [
            reply("Here is a joke."),
            reply("More at example.com"),
            reply("Hello", to=None),
            ("POST /2/dm_conversations", b"{}"),
            ("POST /2/media/upload", b"--multipart--"),
        ]
    )
    assert writes == {"post_summoned": 1, "post_with_url": 1, "post": 1, "dm": 1, "media_upload": 1}

    bill = x_bill.bill(x_bill.delivery_counts([]), writes, messages=5)

    assert bill["total_usd"] == pytest.approx(0.010 + 0.200 + 0.015 + 0.015)
    assert bill["per_kind_per_million"]["post_with_url"]["usd"] == pytest.approx(0.2 * 200_000)


def test_a_post_delivered_twice_is_priced_once_and_a_dm_at_its_own_rate():
    mention = {"id": "1850000000000000001", "kind": "MENTION", "images": []}
    dm = {"id": "1850000000000000002", "kind": "DIRECT_MESSAGE", "images": []}

    deliveries = x_bill.delivery_counts([mention, mention, dm])

    assert deliveries == {"post.mention.create": 1, "dm.received": 1}
    assert x_bill.bill(deliveries, x_bill.Counter(), 2)["total_usd"] == pytest.approx(0.015)


def test_the_reference_answers_every_message_with_a_post_and_uploads_every_photo():
    messages = [
        {"id": "1", "kind": "MENTION", "images": [{}, {}]},
        {"id": "2", "kind": "DIRECT_MESSAGE", "images": []},
    ]
    lines = {line["item"]: line["quantity"] for line in x_bill.reference(messages)["lines"]}
    assert (lines["post_summoned"], lines["post"], lines["dm"], lines["media_upload"]) == (
        1,
        1,
        0,
        2,
    )
