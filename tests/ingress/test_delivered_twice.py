"""A post X delivers twice, as `post.mention.create` and as `post.reply.create` (a direct reply
that also @mentions the bot fires both), is one message: answered once, and priced once (X
deduplicates a resource within its UTC day; bench/x_bill.py prices deliveries per post).
"""

from __future__ import annotations

import copy

from bench import x_bill
from tests.ingress.conftest import details
from tests.ingress.xdocs import XAA_USER, xaa


def test_a_reply_delivered_as_a_mention_too_is_one_message_received(webhook_for):
    webhook = webhook_for(XAA_USER)
    as_reply = xaa("post.reply.create")
    as_mention = copy.deepcopy(as_reply)
    as_mention["data"]["event_type"] = "post.mention.create"
    as_mention["data"]["event_uuid"] = "2090000000000000099"
    post_id = as_reply["data"]["payload"]["id"]

    assert webhook.post(as_mention).status_code == 200
    assert webhook.post(as_reply).status_code == 200

    published = webhook.published()
    assert len(details(published, "TWITTER_TWEETED")) == 2  # both deliveries kept raw
    assert [m["MessageId"] for m in details(published, "MESSAGE_RECEIVED")] == [post_id]
    message = {"id": post_id, "kind": "MENTION", "images": []}
    assert x_bill.delivery_counts([message, message]) == {"post.mention.create": 1}
