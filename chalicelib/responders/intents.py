"""The local backend of the Conversation port: an intent matcher built from bot.json.

The matcher is small and explainable, a "soft TF-IDF" over words:

- Every word carries its IDF over all sample utterances, so the words every intent uses
  ("tell", "me", "a") count for little and the distinguishing ones ("joke", "fact") for more.
- Words are compared with a typo-tolerant similarity (1 - optimal-string-alignment edit
  distance / length, kept only from 0.7 up), so "joek", "jokes" and "intresting" still match.
- For each sample utterance: recall = how much of the utterance's IDF weight the message
  contains; precision = how much of the message's weight the utterance explains (a word no
  utterance contains weighs as much as the rarest word). Score = recall^0.75 * precision^0.25:
  chatty extras ("hey", "please", "about space") cost little, unrelated text costs a lot.
- An intent scores its best utterance; the best intent wins if its score reaches the bot's
  nluConfidenceThreshold, otherwise FallbackIntent (with that best score as confidence).
- One matcher per Lex locale, from that locale's utterances (bot.json), as Lex builds one
  model per locale. Words are Unicode letters and digits; a run of Japanese or Chinese
  script, written without spaces, is read as its overlapping character pairs (bigrams),
  so "ジョークを教えて" and "何かジョークを言って" share the pairs of "ジョーク".

`LocalConversation` answers with the very same fulfilment code as the Lex code hook, fed a
Lex V2-shaped event, so both backends reply identically for the same intent.
"""

from __future__ import annotations

import logging
import math
import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chalicelib.responders.bot_definition import (
    FALLBACK_INTENT,
    BotDefinition,
    load_bot_definition,
)

logger = logging.getLogger(__name__)

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)@\w+")
_APOSTROPHE = re.compile(r"['\u2019\u2018`]")
_NON_WORD = re.compile(r"[\W_]+")
# Scripts written without spaces between words: Hiragana, Katakana (and its long-vowel
# mark), CJK ideographs.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]+")

MIN_WORD_SIMILARITY = 0.7  # one typo in a 4-letter word (0.75) passes; "me"/"my" (0.5) not
RECALL_EXPONENT = 0.75


def normalise(text: str) -> str:
    """Lower-case words only: no URLs, no @handles, no punctuation, no accents; a run of
    unspaced script (Japanese, Chinese) becomes its character bigrams."""
    # NFKC first: full-width letters and half-width kana become their usual forms, and
    # accents are stripped from Latin letters only, so that a kana keeps its voicing mark.
    text = unicodedata.normalize("NFKC", text)
    text = "".join(_strip_accent(c) for c in text).casefold()
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _APOSTROPHE.sub("", text)  # "I'd" and "Id" are the same word to a tweeter
    text = _UNSPACED.sub(lambda run: f" {' '.join(_bigrams(run.group()))} ", text)
    return " ".join(_NON_WORD.sub(" ", text).split())


def _strip_accent(char: str) -> str:
    if char.isascii() or not unicodedata.category(char).startswith("L") or _UNSPACED.match(char):
        return char
    base = unicodedata.normalize("NFKD", char)
    return "".join(c for c in base if not unicodedata.combining(c))


def _bigrams(run: str) -> list[str]:
    return [run] if len(run) < 2 else [run[i : i + 2] for i in range(len(run) - 1)]


@lru_cache(maxsize=4096)
def word_similarity(a: str, b: str) -> float:
    """1 - (optimal string alignment distance / longer length), 0 below MIN_WORD_SIMILARITY.

    OSA counts a swap of two neighbours as one edit, the commonest typo ("joek")."""
    if a == b:
        return 1.0
    longest = max(len(a), len(b))
    if abs(len(a) - len(b)) / longest > 1 - MIN_WORD_SIMILARITY:
        return 0.0
    similarity = 1 - _osa_distance(a, b) / longest
    return similarity if similarity >= MIN_WORD_SIMILARITY else 0.0


def _osa_distance(a: str, b: str) -> int:
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


@dataclass(frozen=True)
class Match:
    """Why the matcher chose what it chose: the winning intent and its closest utterance."""

    intent: str
    confidence: float
    closest_intent: str
    closest_utterance: str
    recall: float
    precision: float


@dataclass(frozen=True)
class _Example:
    intent: str
    utterance: str
    words: tuple[str, ...]


class LocalIntentMatcher:
    """Soft TF-IDF word matching against each sample utterance, best utterance per intent."""

    def __init__(self, definition: BotDefinition | None = None, locale: str | None = None) -> None:
        self.definition = definition or load_bot_definition()
        self.locale = locale or self.definition.locales[0]
        if self.locale not in self.definition.locales:
            raise ValueError(f"the bot has no locale {self.locale!r}")
        self.threshold = self.definition.nlu_confidence_threshold
        self._examples = [
            _Example(intent.name, utterance, tuple(normalise(utterance).split()))
            for intent in self.definition.matchable_intents
            for utterance in self.definition.utterances(intent, self.locale)
        ]
        self._idf = _idf([set(e.words) for e in self._examples])
        # A word no utterance uses weighs as much as the rarest one: evidence *against*.
        self._unseen_idf = math.log(1 + len(self._examples)) + 1

    def match(self, text: str) -> tuple[str, float]:
        """(intent name, confidence in [0, 1]); FallbackIntent when below the threshold."""
        found = self.explain(text)
        return found.intent, found.confidence

    def explain(self, text: str) -> Match:
        """The match with its closest utterance, for logs and for people tuning bot.json."""
        query = tuple(normalise(text).split())
        best: tuple[float, float, float, _Example | None] = (0.0, 0.0, 0.0, None)
        if not query:  # nothing but punctuation, emoji, links or @handles
            return Match(FALLBACK_INTENT, 0.0, FALLBACK_INTENT, "", 0.0, 0.0)
        query_weights = [self._query_weight(word) for word in query]
        example: _Example | None  # each utterance in turn, then the best one (if any)
        for example in self._examples:
            recall, precision = self._overlap(query, query_weights, example.words)
            score = recall**RECALL_EXPONENT * precision ** (1 - RECALL_EXPONENT)
            if score > best[0]:
                best = (score, recall, precision, example)
        score, recall, precision, example = best
        confidence = round(min(1.0, score), 4)
        closest = example.intent if example else FALLBACK_INTENT
        intent = closest if example and confidence >= self.threshold else FALLBACK_INTENT
        utterance = example.utterance if example else ""
        logger.debug("matched %r -> %s %.3f via %r", text, intent, confidence, utterance)
        return Match(intent, confidence, closest, utterance, round(recall, 4), round(precision, 4))

    def _query_weight(self, word: str) -> float:
        # A misspelt word weighs as the vocabulary word it most resembles.
        known = max(self._idf, key=lambda v: (word_similarity(word, v), -len(v)))
        return self._idf[known] if word_similarity(word, known) else self._unseen_idf

    def _overlap(
        self, query: tuple[str, ...], query_weights: list[float], words: tuple[str, ...]
    ) -> tuple[float, float]:
        utterance_weights = [self._idf[w] for w in words]
        found = sum(
            weight * max(word_similarity(w, q) for q in query)
            for w, weight in zip(words, utterance_weights, strict=True)
        )
        explained = sum(
            weight * max(word_similarity(q, w) for w in words)
            for q, weight in zip(query, query_weights, strict=True)
        )
        return found / sum(utterance_weights), explained / sum(query_weights)


def _idf(documents: list[set[str]]) -> dict[str, float]:
    # Smoothed IDF, as scikit-learn's TfidfVectorizer computes it.
    df: Counter[str] = Counter()
    for words in documents:
        df.update(words)
    n = len(documents)
    return {w: math.log((1 + n) / (1 + d)) + 1 for w, d in df.items()}


class LocalConversation:
    """The Conversation port on the local backend: a matcher per locale (built on first use)
    plus Lex's own fulfilment."""

    def __init__(
        self, matcher: LocalIntentMatcher | None = None, rng: random.Random | None = None
    ) -> None:
        self.matcher = matcher or LocalIntentMatcher()
        self._matchers = {self.matcher.locale: self.matcher}
        self._rng = rng

    def matcher_for(self, locale: str | None) -> LocalIntentMatcher:
        """The matcher of `locale` (None: the default matcher's, as Lex's default locale)."""
        if locale is None:
            return self.matcher
        if locale not in self._matchers:
            self._matchers[locale] = LocalIntentMatcher(self.matcher.definition, locale)
        return self._matchers[locale]

    def ask(self, text: str, session_id: str, locale: str | None = None) -> dict[str, Any]:
        """{"Intent", "Confidence", "Message"}, as LexConversation returns them."""
        from chalicelib.responders.fulfilment import lex_fulfilment
        from chalicelib.responders.lex import MAX_TEXT_CHARS

        if not text.strip():
            raise ValueError("cannot ask the bot about empty text")
        text = text[:MAX_TEXT_CHARS]  # as LexConversation does, so both see the same text
        matcher = self.matcher_for(locale)
        intent, confidence = matcher.match(text)
        event = _lex_event(matcher, text, session_id, intent, confidence)
        response = lex_fulfilment(event, rng=self._rng)
        message = " ".join(m["content"] for m in response["messages"])
        return {"Intent": intent, "Confidence": confidence, "Message": message}


def _lex_event(
    matcher: LocalIntentMatcher, text: str, session_id: str, intent: str, confidence: float
) -> dict[str, Any]:
    """The Lex V2 code hook event Lex would send for this turn (documented fields only)."""
    intent_state = {"name": intent, "slots": {}, "state": "ReadyForFulfillment",
                    "confirmationState": "None"}  # fmt: skip
    interpretation: dict[str, Any] = {"intent": intent_state, "interpretationSource": "Lex"}
    if intent != FALLBACK_INTENT:  # Lex reports no nluConfidence for the fallback
        interpretation["nluConfidence"] = confidence
    return {
        "messageVersion": "1.0",
        "invocationSource": "FulfillmentCodeHook",
        "inputMode": "Text",
        "responseContentType": "text/plain; charset=utf-8",
        "sessionId": session_id,
        "inputTranscript": text,
        "bot": {
            "id": "LOCAL",
            "name": matcher.definition.name,
            "localeId": matcher.locale,
            "version": "DRAFT",
            "aliasId": "LOCAL",
            "aliasName": "local",
        },
        "interpretations": [interpretation],
        "sessionState": {"intent": intent_state, "sessionAttributes": {}},
        "requestAttributes": {},
    }
