"""What X charges for the corpus, beside the AWS bill: Magpie's measured run and the reference.

Priced with X's own table (chalicelib/x_prices.json, its source, commit and date in the file;
chalicelib/x_cost.py), what the running bot's daily budget uses too:

- deliveries, by X Activity event type: each mention arrives as `post.mention.create`
  ($0.005, a Post), each DM as `dm.received` ($0.010). X deduplicates a resource within a UTC
  day, so the same post delivered as both `post.mention.create` and `post.reply.create` is
  priced once (and answered once: ingress's idempotency key is the post's id);
- posts, by kind: what egress sent to `POST /2/tweets`, read off the requests the X mock
  received (summoned reply, not summoned, holding a URL), DMs, media uploads;
- reads: the reply lookup's crash scenario (`crash_scenario`), run with the real lookup
  against an X that always has more to page through.

The reference posts every reply as a post (its egress has no DM path), uploads every photo
it draws on, and receives every message as a Post or DM event, the same deliveries as ours.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from chalicelib.events import DIRECT_MESSAGE
from chalicelib.x_cost import delivery_usd, holds_url, message_delivery_usd, x_price_table

MENTION_EVENT = "post.mention.create"
DM_EVENT = "dm.received"
WRITE_KINDS = ("post_summoned", "post", "post_with_url", "dm", "media_upload")
OLD_LOOKUP_PAGE = 100  # max_results of the reply lookup before it paged (commit dddafb4)


def delivery_counts(messages: list[dict[str, Any]]) -> Counter[str]:
    """Deliveries by X Activity event type, one per distinct message (X's daily dedup)."""
    seen: dict[str, str] = {}
    for message in messages:
        seen[message["id"]] = DM_EVENT if message["kind"] == DIRECT_MESSAGE else MENTION_EVENT
    return Counter(seen.values())


def post_kind_of(body: dict[str, Any]) -> str:
    """The write X bills for one `POST /2/tweets` body."""
    if holds_url(str(body.get("text") or "")):
        return "post_with_url"
    # Magpie replies only to posts that mention it (X refuses other replies from a
    # self-serve app), so a reply is summoned and anything else is a plain post.
    return "post_summoned" if (body.get("reply") or {}).get("in_reply_to_tweet_id") else "post"


def writes_from_requests(x_requests: list[tuple[str, bytes | str | None]]) -> Counter[str]:
    """Writes by billed kind, from what the X mock received: (operation, request body)."""
    writes: Counter[str] = Counter()
    for operation, body in x_requests:
        if operation == "POST /2/tweets":
            writes[post_kind_of(json.loads(body or "{}"))] += 1
        elif operation == "POST /2/dm_conversations":
            writes["dm"] += 1
        elif operation == "POST /2/media/upload":
            writes["media_upload"] += 1
    return writes


def bill(deliveries: Counter[str], writes: Counter[str], messages: int) -> dict[str, Any]:
    """The X bill: itemised, per message and per million messages."""
    prices = x_price_table()["writes"]
    lines = [
        {"item": f"delivery {event}", "quantity": n, "unit_usd": delivery_usd(event)}
        for event, n in sorted(deliveries.items())
    ] + [
        {"item": kind, "quantity": writes.get(kind, 0), "unit_usd": float(prices[kind])}
        for kind in WRITE_KINDS  # every kind, 0 included: a reply with a URL shows up as one
    ]
    for line in lines:
        line["usd"] = line["quantity"] * line["unit_usd"]
    total = sum(line["usd"] for line in lines)
    delivered = sum(line["usd"] for line in lines if line["item"].startswith("delivery"))
    per_million = 1_000_000 / messages
    by_kind = {
        line["item"]: {"count": line["quantity"] * per_million, "usd": line["usd"] * per_million}
        for line in lines
    }
    return {
        "per_million_usd": total * per_million,
        "deliveries_per_million_usd": delivered * per_million,
        "writes_per_million_usd": (total - delivered) * per_million,
        "per_kind_per_million": by_kind,
        "lines": lines,
        "total_usd": total,
        "messages": messages,
    }


def measured(
    messages: list[dict[str, Any]], x_requests: list[tuple[str, bytes | str | None]]
) -> dict[str, Any]:
    """Magpie's X bill for a profile's run."""
    return bill(delivery_counts(messages), writes_from_requests(x_requests), len(messages))


def reference(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The reference's X bill on the same corpus: every message delivered and answered by
    a post (summoned for a mention; a DM answered by a post is not a summoned reply), and
    every photo uploaded again with its annotations."""
    writes: Counter[str] = Counter()
    for message in messages:
        writes["post" if message["kind"] == DIRECT_MESSAGE else "post_summoned"] += 1
        writes["media_upload"] += len(message["images"])
    return bill(delivery_counts(messages), writes, len(messages))


# --- the crash scenario ----------------------------------------------------------------


def crash_scenario() -> dict[str, Any]:
    """One interrupted mention reply and one interrupted DM reply, looked up by the real
    lookup (chalicelib/egress/lookup.py) against an X that has more to page through than
    any lookup should read: the bot busy (ours the 3rd newest post since the intent), the
    user writing once after our DM. Priced per resource X returns, beside what the
    lookup's old single page of 100 could return."""
    import re
    from datetime import UTC, datetime
    from urllib.parse import parse_qs, urlsplit

    import responses

    from chalicelib.egress.lookup import XReplyLookup
    from chalicelib.egress.x_client import XCredentials
    from chalicelib.events import MENTION
    from chalicelib.ports import ReplyRequest

    bot, author, tweet, intent = "1876543210987654321", "2244994945", "1850000000000000001", 1.79e9
    returned: Counter[str] = Counter()

    def page(items: list[dict[str, Any]], kind: str, request: Any) -> tuple[int, dict, str]:
        query = parse_qs(urlsplit(request.url).query)
        size = int(query["max_results"][0])
        start = int(query.get("pagination_token", ["p0"])[0][1:])
        served = items[start : start + size]
        returned[kind] += len(served)
        meta = {"next_token": f"p{start + size:015d}"} if start + size < len(items) else {}
        return 200, {}, json.dumps({"data": served, "meta": meta})

    def at(seconds: float) -> str:
        return datetime.fromtimestamp(intent + seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    posts = [
        {"id": str(1900 + i), "referenced_posts": [{"type": "replied_to", "id": str(i)}]}
        for i in range(2)
    ]
    posts.append({"id": "1999", "referenced_posts": [{"type": "replied_to", "id": tweet}]})
    posts += [{"id": str(2000 + i), "referenced_posts": []} for i in range(200)]
    events = [
        {"id": "e3", "sender_id": author, "text": "thanks", "created_at": at(20)},
        {"id": "e2", "sender_id": bot, "text": "Here is a fact.", "created_at": at(2)},
    ] + [
        {"id": f"e{i}", "sender_id": author, "text": "hi", "created_at": at(-60 - i)}
        for i in range(200)
    ]
    lookup = XReplyLookup(XCredentials("k", "s", "t", "ts"), bot, clock=lambda: intent + 3600)
    with responses.RequestsMock() as x:
        x.add_callback(
            "GET", re.compile(r".*/2/users/.*/tweets.*"), lambda r: page(posts, "owned_post", r)
        )
        x.add_callback("GET", re.compile(r".*/dm_events.*"), lambda r: page(events, "dm_event", r))
        lookup.find_reply(ReplyRequest(MENTION, "hi", author, tweet), since=intent)
        lookup.find_reply(ReplyRequest(DIRECT_MESSAGE, "Here is a fact.", author, None), intent)
        requests = len(x.calls)
    reads = x_price_table()["reads"]
    now = {kind: n * float(reads[kind]) for kind, n in returned.items()}
    before = {kind: OLD_LOOKUP_PAGE * float(reads[kind]) for kind in ("owned_post", "dm_event")}
    return {
        "scenario": crash_scenario.__doc__,
        "requests": requests,
        "resources_returned": dict(returned),
        "usd": now,
        "usd_total": sum(now.values()),
        "before_usd": before,
        "before_usd_total": sum(before.values()),
        "delivery_and_reply_usd": {
            "mention": message_delivery_usd("MENTION")
            + float(x_price_table()["writes"]["post_summoned"]),
            "direct_message": message_delivery_usd(DIRECT_MESSAGE)
            + float(x_price_table()["writes"]["dm"]),
        },
    }
