"""Hostile text: a 1 MB delivery can carry a message far longer than any post or DM. The
local models read only its first MAX_TEXT_CHARS characters, as Comprehend's adapter reads
only its first 5,000 bytes."""

from __future__ import annotations

import pytest

from chalicelib.analysis.local_text import MAX_TEXT_CHARS, LocalTextAnalyser
from chalicelib.analysis.sentiment import VaderSentiment

pytestmark = pytest.mark.slow

FILLER = "the weather was mild and the bus came on time. "


def long_text(name_at: int) -> str:
    """Filler with 'Ada Lovelace met Charles Babbage in London' starting at `name_at`."""
    head = (FILLER * (name_at // len(FILLER) + 1))[:name_at]
    tail = FILLER * 4000  # ~200 KB in all: what once cost 71 s and 915 MB in spaCy
    return head + "Ada Lovelace met Charles Babbage in London. " + tail


def names(entities: list[dict]) -> set[str]:
    return {entity["Text"] for entity in entities}


def test_entities_are_read_from_the_first_max_text_chars_only():
    analyser = LocalTextAnalyser()
    early = analyser.entities(long_text(100), "en")
    assert "Charles Babbage" in names(early)
    assert all(entity["EndOffset"] <= MAX_TEXT_CHARS for entity in early)
    late = analyser.entities(long_text(MAX_TEXT_CHARS + 10), "en")
    assert "Charles Babbage" not in names(late)


def test_key_phrases_stop_at_the_cap_too():
    phrases = LocalTextAnalyser().key_phrases(long_text(MAX_TEXT_CHARS + 10), "en")
    assert phrases and all(phrase["EndOffset"] <= MAX_TEXT_CHARS for phrase in phrases)
    assert "Charles Babbage" not in {phrase["Text"] for phrase in phrases}


def test_sentiment_reads_the_capped_text():
    seen: list[list[str]] = []

    class Recording(VaderSentiment):
        def score(self, texts):
            seen.append(list(texts))
            return super().score(texts)

    text = "terrible, awful, hateful. " * 20_000
    [result] = LocalTextAnalyser(Recording()).sentiment([text], "en")
    assert result["Sentiment"] == "NEGATIVE"
    assert [len(t) for t in seen[0]] == [MAX_TEXT_CHARS]
