"""Text from X, made safe once at the edge: what every consumer downstream may rely on.

X escapes `&`, `<` and `>` as HTML entities in post and DM texts (both formats). JSON may
carry a lone surrogate escape (`"\\ud83d"`), which is a valid Python string but cannot be
encoded as UTF-8: the lake, EventBridge and every analyser would fail on it later. Comprehend
refuses texts over 5,000 UTF-8 bytes, so the text kept for analysis is cut there, on a
character boundary, for both backends alike.
"""

from __future__ import annotations

import html
import re
from typing import Any

MAX_TEXT_BYTES = 5_000

_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def normalise_text(text: str) -> str:
    """Entities decoded, invalid surrogates replaced by U+FFFD, at most MAX_TEXT_BYTES."""
    text = repair_surrogates(html.unescape(text))
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_TEXT_BYTES:
        return text
    return encoded[:MAX_TEXT_BYTES].decode("utf-8", "ignore")


def repair_surrogates(text: str) -> str:
    """Joins split surrogate pairs into their character and replaces lone ones with U+FFFD."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def may_hold_surrogates(raw_body: bytes) -> bool:
    """Cheap pre-check on the raw JSON: only a `\\udXXX` escape can put a surrogate in a
    parsed string (a raw surrogate is invalid UTF-8 and fails parsing)."""
    return _SURROGATE_ESCAPE.search(raw_body) is not None


def repair_all_surrogates(value: Any) -> Any:
    """The same JSON value with every string (keys included) passed through
    `repair_surrogates`. Recursive: callers bound the depth first."""
    if isinstance(value, str):
        return repair_surrogates(value)
    if isinstance(value, list):
        return [repair_all_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {repair_surrogates(k): repair_all_surrogates(v) for k, v in value.items()}
    return value
