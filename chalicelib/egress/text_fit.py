"""Fit reply text into X's weighted post length.

X counts posts in *weighted* characters (twitter-text v3): most Latin text weighs 1, CJK and
most other scripts weigh 2, every URL weighs 23 whatever its length, and an emoji (even a
multi-code-point ZWJ sequence) weighs 2. A post over the limit is rejected, so egress cuts
the text itself rather than letting X refuse the reply.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

ELLIPSIS = "…"
POST_LIMIT = 280

# Code points that never start a user-perceived character: they extend the one before.
_ZWJ = 0x200D
_EXTENDING_RANGES = (
    (0x1160, 0x11FF),  # Hangul medial vowels and final consonants (conjoining jamo)
    (0xFE00, 0xFE0F),  # variation selectors (text/emoji presentation)
    (0x1F3FB, 0x1F3FF),  # emoji skin-tone modifiers
    (0xE0020, 0xE007F),  # tag characters (subdivision flags)
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
_MARK_CATEGORIES = frozenset({"Mn", "Mc", "Me"})

# A word cut is preferred; it is only abandoned for a character cut when it would throw away
# more than this share of the budget (e.g. "ok" followed by one 1,000-character word).
_MIN_WORD_CUT_SHARE = 0.5


def weighted_length(text: str) -> int:
    """X's weighted length of `text` (URLs 23, emoji and CJK 2, most Latin 1)."""
    from twitter_text import parse_tweet  # imports pkg_resources (~0.2 s): off the cold start

    return parse_tweet(text).weightedLength


def fit_text(text: str, limit: int = POST_LIMIT) -> str:
    """Return `text` unchanged if it fits in `limit` weighted characters; otherwise its longest
    clean prefix plus "…", cut at a word boundary when that keeps enough of the text, else at a
    grapheme boundary (never inside an emoji, a URL, a surrogate pair or a combining sequence).

    The result always has weighted length <= limit, and the result minus its trailing "…" is a
    prefix of `text`.
    """
    ellipsis_weight = weighted_length(ELLIPSIS)
    if limit < ellipsis_weight:
        raise ValueError(f"limit {limit} cannot hold even the ellipsis ({ellipsis_weight})")
    if weighted_length(text) <= limit:
        return text

    def fits(prefix: str) -> bool:
        return weighted_length(prefix + ELLIPSIS) <= limit

    word_cut = _longest_fitting(text, _word_boundaries(text), fits)
    if word_cut and weighted_length(word_cut) >= limit * _MIN_WORD_CUT_SHARE:
        return word_cut + ELLIPSIS
    char_cut = _longest_fitting(text, _grapheme_boundaries(text), fits)
    best = max(word_cut or "", char_cut or "", key=len)
    return best + ELLIPSIS


def _longest_fitting(text: str, cuts: list[int], fits: Callable[[str], bool]) -> str | None:
    """The longest `text[:cut].rstrip()` (non-empty) that fits, by binary search over the
    ascending cut positions.

    Weighted length grows with the prefix at these cuts (whole words or whole graphemes), so
    the search is exact in practice; whatever it returns has been checked with `fits`.
    """
    best: str | None = None
    lo, hi = 0, len(cuts) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = text[: cuts[mid]].rstrip()
        if not candidate:
            lo = mid + 1  # only leading whitespace so far: a longer cut may still fit
        elif fits(candidate):
            best = candidate
            lo = mid + 1
        else:
            hi = mid - 1
    return best


def _word_boundaries(text: str) -> list[int]:
    """Positions where a word ends: just before whitespace that follows a non-space."""
    return [i for i in range(1, len(text)) if text[i].isspace() and not text[i - 1].isspace()]


def _grapheme_boundaries(text: str) -> list[int]:
    """Positions between user-perceived characters where a cut is safe.

    The standard library has no grapheme segmentation, so this approximates UAX #29: emoji
    sequences (as twitter-text finds them) and URLs are atomic, and marks, ZWJ, variation
    selectors, skin tones, tags, CRLF and surrogate pairs are never separated.
    """
    blocked = _atomic_interiors(text)
    return [i for i in range(1, len(text)) if i not in blocked and _may_break(text, i)]


def _atomic_interiors(text: str) -> set[int]:
    from twitter_text import extract_emojis_with_indices, extract_urls_with_indices

    spans = [e["indices"] for e in extract_emojis_with_indices(text)]
    spans += [u["indices"] for u in extract_urls_with_indices(text)]
    return {i for start, end in spans for i in range(start + 1, end)}


def _may_break(text: str, i: int) -> bool:
    before, after = ord(text[i - 1]), ord(text[i])
    if before == _ZWJ or _extends(after):
        return False
    if text[i - 1] == "\r" and text[i] == "\n":
        return False
    # Never between the halves of a surrogate pair that reached us undecoded.
    return not (0xD800 <= before <= 0xDBFF and 0xDC00 <= after <= 0xDFFF)


def _extends(code_point: int) -> bool:
    if code_point == _ZWJ:
        return True
    if any(lo <= code_point <= hi for lo, hi in _EXTENDING_RANGES):
        return True
    return unicodedata.category(chr(code_point)) in _MARK_CATEGORIES
