"""Amazon Comprehend text analysis (MAGPIE_BACKEND=aws), in the ports.TextAnalyser shapes.

The client is injected (a boto3 `comprehend` client), so this module never imports boto3.
Every call is retried on throttling with `call_with_retries`. Texts are expected cleaned by
`text_prep.strip_for_analysis` already; offsets refer to the text passed in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from chalicelib.analysis.retry import CapabilityDisabled, call_with_retries, is_throttling

logger = logging.getLogger(__name__)

TEXT_CAPABILITIES = frozenset({"sentiment", "entities", "key_phrases", "language"})

# Comprehend's built-in sentiment, entities and key phrases all accept exactly these codes
# (Comprehend guide, "Languages supported in Amazon Comprehend"; the API's LanguageCode enum).
# Anything else is answered with UnsupportedLanguageException, so we do not ask.
COMPREHEND_LANGUAGES = frozenset(
    {"en", "es", "fr", "de", "it", "pt", "ar", "hi", "ja", "ko", "zh", "zh-TW"}
)
_TRADITIONAL_CHINESE = frozenset({"zh-tw", "zh-hant", "zh-hk", "zh-mo"})

# Request size limits (API reference): DetectSentiment and each BatchDetectSentiment item
# 5 KB, DetectEntities/DetectKeyPhrases/DetectDominantLanguage 100 KB, of UTF-8.
# Older docs say "fewer than", hence the - 1. Tweets never reach them; long DMs can.
_SENTIMENT_MAX_BYTES = 5_000 - 1
_DETECT_MAX_BYTES = 100_000 - 1
_BATCH_SIZE = 25  # BatchDetectSentiment's maximum documents per request

NEUTRAL_SENTIMENT: dict[str, Any] = {
    "Sentiment": "NEUTRAL",
    "SentimentScore": {"Positive": 0.0, "Negative": 0.0, "Neutral": 1.0, "Mixed": 0.0},
}
UNDETERMINED_LANGUAGE: dict[str, Any] = {"LanguageCode": "und", "Score": 0.0}


def comprehend_language(language: str) -> str | None:
    """The Comprehend LanguageCode for a BCP 47 tag ("en-GB" -> "en", "zh-Hant" -> "zh-TW"),
    or None when Comprehend does not analyse that language."""
    tag = language.strip()
    if tag.lower() in _TRADITIONAL_CHINESE:
        return "zh-TW"
    primary = tag.lower().split("-")[0]
    return primary if primary in COMPREHEND_LANGUAGES else None


def _truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut to at most `max_bytes` of UTF-8 without splitting a character; only the tail goes,
    so offsets in the result still index the original text."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    logger.info("truncating text from %d to %d UTF-8 bytes", len(encoded), max_bytes)
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def _sentiment_result(item: dict[str, Any]) -> dict[str, Any]:
    score = item["SentimentScore"]
    return {
        "Sentiment": item["Sentiment"],
        "SentimentScore": {k: score[k] for k in ("Positive", "Negative", "Neutral", "Mixed")},
    }


def _span(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "Text": item["Text"],
        "Score": item["Score"],
        "BeginOffset": item["BeginOffset"],
        "EndOffset": item["EndOffset"],
    }


class ComprehendTextAnalyser:
    """TextAnalyser over Amazon Comprehend (see chalicelib.ports.TextAnalyser)."""

    def __init__(
        self,
        client: Any,
        *,
        capabilities: frozenset[str] = TEXT_CAPABILITIES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        unknown = set(capabilities) - TEXT_CAPABILITIES
        if unknown:
            raise ValueError(f"unknown text capabilities: {sorted(unknown)}")
        self._client = client
        self._capabilities = frozenset(capabilities)
        self._sleep = sleep

    def _require(self, capability: str) -> None:
        if capability not in self._capabilities:
            raise CapabilityDisabled(capability)

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        method = getattr(self._client, operation)
        return call_with_retries(
            lambda: method(**params), retry_on=is_throttling, sleep=self._sleep
        )

    # --- sentiment ------------------------------------------------------------------

    def sentiment(self, texts: Sequence[str], language: str) -> list[dict[str, Any]]:
        """One result per text; [] (no call) when Comprehend lacks the language. Blank texts
        get NEUTRAL without being sent (the API rejects empty strings)."""
        self._require("sentiment")
        code = comprehend_language(language)
        if code is None:
            logger.info("Comprehend has no sentiment for language %r", language)
            return []
        results: list[dict[str, Any] | None] = [
            None if text.strip() else dict(NEUTRAL_SENTIMENT) for text in texts
        ]
        pending = [i for i, text in enumerate(texts) if text.strip()]
        if len(pending) == 1:
            results[pending[0]] = self._detect_sentiment(texts[pending[0]], code)
        else:
            for start in range(0, len(pending), _BATCH_SIZE):
                chunk = pending[start : start + _BATCH_SIZE]
                for index, result in self._batch_sentiment(texts, chunk, code).items():
                    results[index] = result
        done = [r for r in results if r is not None]
        if len(done) != len(texts):
            raise RuntimeError(f"sentiment missing for {len(texts) - len(done)} texts")
        return done

    def _detect_sentiment(self, text: str, code: str) -> dict[str, Any]:
        response = self._call(
            "detect_sentiment",
            Text=_truncate_utf8(text, _SENTIMENT_MAX_BYTES),
            LanguageCode=code,
        )
        return _sentiment_result(response)

    def _batch_sentiment(
        self, texts: Sequence[str], chunk: list[int], code: str
    ) -> dict[int, dict[str, Any]]:
        """Results keyed by index into `texts`. A document the batch reports in ErrorList is
        sent once more on its own, so its real error (if any) surfaces instead of a gap."""
        response = self._call(
            "batch_detect_sentiment",
            TextList=[_truncate_utf8(texts[i], _SENTIMENT_MAX_BYTES) for i in chunk],
            LanguageCode=code,
        )
        found = {chunk[item["Index"]]: _sentiment_result(item) for item in response["ResultList"]}
        for error in response["ErrorList"]:
            index = chunk[error["Index"]]
            logger.warning(
                "BatchDetectSentiment item %d failed (%s: %s); retrying it alone",
                index,
                error.get("ErrorCode"),
                error.get("ErrorMessage"),
            )
            found[index] = self._detect_sentiment(texts[index], code)
        missing = set(chunk) - set(found)
        if missing:
            raise RuntimeError(f"BatchDetectSentiment returned nothing for items {sorted(missing)}")
        return found

    # --- entities, key phrases, language ---------------------------------------------

    def entities(self, text: str, language: str) -> list[dict[str, Any]]:
        """[{"Text", "Type", "Score", "BeginOffset", "EndOffset"}]; [] without a call for
        blank text or a language Comprehend does not support."""
        self._require("entities")
        code = comprehend_language(language)
        if code is None or not text.strip():
            return []
        response = self._call(
            "detect_entities", Text=_truncate_utf8(text, _DETECT_MAX_BYTES), LanguageCode=code
        )
        return [{**_span(e), "Type": e["Type"]} for e in response["Entities"]]

    def key_phrases(self, text: str, language: str) -> list[dict[str, Any]]:
        """[{"Text", "Score", "BeginOffset", "EndOffset"}]; [] as for entities."""
        self._require("key_phrases")
        code = comprehend_language(language)
        if code is None or not text.strip():
            return []
        response = self._call(
            "detect_key_phrases", Text=_truncate_utf8(text, _DETECT_MAX_BYTES), LanguageCode=code
        )
        return [_span(p) for p in response["KeyPhrases"]]

    def detect_language(self, text: str) -> dict[str, Any]:
        """The most likely language; {"LanguageCode": "und", "Score": 0.0} for blank text
        (not sent). The guide asks for at least 20 characters; shorter text is still sent,
        because most tweets are short, and if Comprehend refuses one that error propagates
        and is recorded like any other."""
        self._require("language")
        if not text.strip():
            return dict(UNDETERMINED_LANGUAGE)
        response = self._call(
            "detect_dominant_language", Text=_truncate_utf8(text, _DETECT_MAX_BYTES)
        )
        languages = response["Languages"]
        if not languages:
            return dict(UNDETERMINED_LANGUAGE)
        best = max(languages, key=lambda lang: lang["Score"])
        return {"LanguageCode": best["LanguageCode"], "Score": best["Score"]}
