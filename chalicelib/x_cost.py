"""What X charges: its pay-per-usage price table (x_prices.json) and the price of a reply.

One table for the running bot (the daily X budget in egress) and for `make bench`, which
prices every X request and delivery it counts with the same functions. The table records
where its figures were read (X's public docs repository, the commit and the date).

X bills a delivered message (its X Activity event), each post or DM we send, and each
resource a read returns. A post holding a URL costs 20 times a summoned reply, which is why
no reply of Magpie's may hold one (tests/responders/test_no_urls.py).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from chalicelib.events import DIRECT_MESSAGE

PRICES_FILE = Path(__file__).resolve().parent / "x_prices.json"
MICRO = 1_000_000  # the budget counter adds whole micro-dollars: no float drift in a day
# The X Activity event each kind of message arrives as (both mention events cost a Post).
DELIVERY_EVENT = {DIRECT_MESSAGE: "dm.received"}
MENTION_EVENT = "post.mention.create"


@functools.cache
def x_price_table(path: Path = PRICES_FILE) -> dict[str, Any]:
    """X's price table, read once (not at import: nothing works at import time)."""
    table: dict[str, Any] = json.loads(path.read_text())
    return table


def holds_url(text: str) -> bool:
    """Whether X would see a URL in `text` (twitter-text's extractor, as X counts links:
    a bare `example.com` is one too)."""
    from twitter_text import extract_urls  # imports pkg_resources: off the cold start

    return bool(text) and bool(extract_urls(text))


ONE_DOT_LEADER = "\u2024"  # looks like a full stop; X's parser does not read it as one


def without_links(text: str) -> str:
    """`text` with every stretch X would read as a link made plain: its full stops become
    one-dot leaders (`will.i.am` stays legible and is no $0.200 post). For words from
    outside the bot, such as the names a face search returns."""
    from twitter_text import extract_urls_with_indices

    out = text
    for url in extract_urls_with_indices(text):
        start, end = url["indices"]
        out = out[:start] + out[start:end].replace(".", ONE_DOT_LEADER) + out[end:]
    return out


def delivery_usd(event_type: str) -> float:
    """What X charges for delivering one event of this type (0 for an unbilled type)."""
    return float(x_price_table()["deliveries"].get(event_type, 0.0))


def message_delivery_usd(kind: str) -> float:
    """What the delivery of a message of this kind (MENTION or DIRECT_MESSAGE) cost."""
    return delivery_usd(DELIVERY_EVENT.get(kind, MENTION_EVENT))


def post_kind(kind: str, text: str, *, summoned: bool = True) -> str:
    """The write X bills for this reply: `dm`, `post_with_url`, `post_summoned` or `post`."""
    if kind == DIRECT_MESSAGE:
        return "dm"
    if holds_url(text):
        return "post_with_url"
    return "post_summoned" if summoned else "post"


def reply_usd(kind: str, text: str, *, uploads: int = 0, summoned: bool = True) -> float:
    """What X charges for sending this reply, its uploads included."""
    writes = x_price_table()["writes"]
    return float(
        writes[post_kind(kind, text, summoned=summoned)] + uploads * writes["media_upload"]
    )


def answered_message_usd(kind: str, text: str, *, uploads: int = 0) -> float:
    """A message's delivery and our reply to it: what the daily budget counts per reply."""
    return message_delivery_usd(kind) + reply_usd(kind, text, uploads=uploads)


def to_micro(usd: float) -> int:
    return round(usd * MICRO)
