"""ComprehendTextAnalyser against botocore's Stubber (moto has no usable Comprehend).

Responses follow the Comprehend API reference; Stubber also validates them, and the
request parameters, against botocore's service model."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from chalicelib.analysis.aws_text import (
    NEUTRAL_SENTIMENT,
    ComprehendTextAnalyser,
    comprehend_language,
)
from chalicelib.analysis.retry import CapabilityDisabled
from chalicelib.ports import TextAnalyser

SERVICE = "comprehend"  # the client fixture (conftest.py) is for this service

TWEET = "Jeff Bezos founded Amazon in Seattle in 1994."


def sentiment_response(label: str = "NEGATIVE") -> dict[str, Any]:
    scores = {
        "POSITIVE": (0.9812, 0.0021, 0.0153, 0.0014),
        "NEGATIVE": (0.0019, 0.9867, 0.0103, 0.0011),
        "NEUTRAL": (0.0262, 0.0047, 0.9683, 0.0008),
    }[label]
    return {
        "Sentiment": label,
        "SentimentScore": dict(
            zip(("Positive", "Negative", "Neutral", "Mixed"), scores, strict=True)
        ),
    }


ENTITIES_RESPONSE = {
    "Entities": [
        {
            "Score": 0.9994,
            "Type": "PERSON",
            "Text": "Jeff Bezos",
            "BeginOffset": 0,
            "EndOffset": 10,
        },
        {
            "Score": 0.9871,
            "Type": "ORGANIZATION",
            "Text": "Amazon",
            "BeginOffset": 19,
            "EndOffset": 25,
        },
        {
            "Score": 0.9962,
            "Type": "LOCATION",
            "Text": "Seattle",
            "BeginOffset": 29,
            "EndOffset": 36,
        },
        {"Score": 0.9978, "Type": "DATE", "Text": "1994", "BeginOffset": 40, "EndOffset": 44},
    ]
}

KEY_PHRASES_RESPONSE = {
    "KeyPhrases": [
        {"Score": 0.9999, "Text": "Jeff Bezos", "BeginOffset": 0, "EndOffset": 10},
        {"Score": 0.9996, "Text": "Amazon", "BeginOffset": 19, "EndOffset": 25},
        {"Score": 0.9997, "Text": "Seattle", "BeginOffset": 29, "EndOffset": 36},
        {"Score": 0.9991, "Text": "1994", "BeginOffset": 40, "EndOffset": 44},
    ]
}


@pytest.fixture
def analyser(client: Any, sleeps: list[float]) -> ComprehendTextAnalyser:
    return ComprehendTextAnalyser(client, sleep=sleeps.append)


# --- sentiment ------------------------------------------------------------------------


def test_one_text_uses_detect_sentiment(analyser: ComprehendTextAnalyser, stubber: Stubber) -> None:
    stubber.add_response(
        "detect_sentiment",
        sentiment_response("NEGATIVE"),
        {"Text": "this is awful", "LanguageCode": "en"},
    )
    assert analyser.sentiment(["this is awful"], "en") == [sentiment_response("NEGATIVE")]


def test_several_texts_use_batches_of_25(
    analyser: ComprehendTextAnalyser, stubber: Stubber
) -> None:
    texts = [f"message number {i}" for i in range(30)]
    texts.insert(3, "   ")  # blank: answered NEUTRAL, never sent
    sent = [t for t in texts if t.strip()]
    labels = ["POSITIVE", "NEUTRAL", "NEGATIVE"]
    for batch in (sent[:25], sent[25:]):
        stubber.add_response(
            "batch_detect_sentiment",
            {
                "ResultList": [
                    {"Index": i, **sentiment_response(labels[i % 3])} for i in range(len(batch))
                ],
                "ErrorList": [],
            },
            {"TextList": batch, "LanguageCode": "fr"},
        )
    expected = [sentiment_response(labels[j % 3]) for j in range(25)]
    expected += [sentiment_response(labels[j % 3]) for j in range(5)]
    expected.insert(3, NEUTRAL_SENTIMENT)
    assert analyser.sentiment(texts, "fr") == expected


def test_a_failed_batch_item_is_retried_alone(
    analyser: ComprehendTextAnalyser, stubber: Stubber
) -> None:
    texts = ["great stuff", "terrible stuff"]
    stubber.add_response(
        "batch_detect_sentiment",
        {
            "ResultList": [{"Index": 0, **sentiment_response("POSITIVE")}],
            "ErrorList": [
                {
                    "Index": 1,
                    "ErrorCode": "INTERNAL_SERVER_ERROR",
                    "ErrorMessage": "Internal server error",
                }
            ],
        },
        {"TextList": texts, "LanguageCode": "en"},
    )
    stubber.add_response(
        "detect_sentiment",
        sentiment_response("NEGATIVE"),
        {"Text": "terrible stuff", "LanguageCode": "en"},
    )
    results = analyser.sentiment(texts, "en")
    assert [r["Sentiment"] for r in results] == ["POSITIVE", "NEGATIVE"]


def test_throttled_call_is_retried(
    analyser: ComprehendTextAnalyser, stubber: Stubber, sleeps: list[float]
) -> None:
    params = {"Text": "hello there", "LanguageCode": "en"}
    stubber.add_client_error(
        "detect_sentiment",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
        expected_params=params,
    )
    stubber.add_response("detect_sentiment", sentiment_response("POSITIVE"), params)
    assert analyser.sentiment(["hello there"], "en") == [sentiment_response("POSITIVE")]
    assert len(sleeps) == 1


def test_throttling_that_persists_raises_after_four_attempts(
    analyser: ComprehendTextAnalyser, stubber: Stubber, sleeps: list[float]
) -> None:
    for _ in range(4):
        stubber.add_client_error(
            "detect_entities", service_error_code="TooManyRequestsException", http_status_code=400
        )
    with pytest.raises(ClientError, match="TooManyRequestsException"):
        analyser.entities(TWEET, "en")
    assert len(sleeps) == 3


def test_other_errors_are_not_retried(
    analyser: ComprehendTextAnalyser, stubber: Stubber, sleeps: list[float]
) -> None:
    stubber.add_client_error(
        "detect_key_phrases", service_error_code="TextSizeLimitExceededException"
    )
    with pytest.raises(ClientError, match="TextSizeLimitExceededException"):
        analyser.key_phrases(TWEET, "en")
    assert sleeps == []


def test_long_text_is_cut_to_the_byte_limit_on_a_character_boundary(
    analyser: ComprehendTextAnalyser, stubber: Stubber
) -> None:
    text = "é" * 3000  # 6,000 bytes of UTF-8; DetectSentiment takes 5 KB
    stubber.add_response(
        "detect_sentiment",
        sentiment_response("NEUTRAL"),
        {"Text": "é" * 2499, "LanguageCode": "en"},
    )
    analyser.sentiment([text], "en")


# --- entities, key phrases, language -------------------------------------------------------


def test_entities(analyser: ComprehendTextAnalyser, stubber: Stubber) -> None:
    stubber.add_response(
        "detect_entities", ENTITIES_RESPONSE, {"Text": TWEET, "LanguageCode": "en"}
    )
    assert analyser.entities(TWEET, "en") == ENTITIES_RESPONSE["Entities"]


def test_key_phrases(analyser: ComprehendTextAnalyser, stubber: Stubber) -> None:
    stubber.add_response(
        "detect_key_phrases", KEY_PHRASES_RESPONSE, {"Text": TWEET, "LanguageCode": "en"}
    )
    assert analyser.key_phrases(TWEET, "en") == KEY_PHRASES_RESPONSE["KeyPhrases"]


def test_detect_language_picks_the_highest_score(
    analyser: ComprehendTextAnalyser, stubber: Stubber
) -> None:
    text = "Bonjour à tous, quelle belle journée !"
    stubber.add_response(
        "detect_dominant_language",
        {
            "Languages": [
                {"LanguageCode": "en", "Score": 0.0121},
                {"LanguageCode": "fr", "Score": 0.9843},
            ]
        },
        {"Text": text},
    )
    assert analyser.detect_language(text) == {"LanguageCode": "fr", "Score": 0.9843}


def test_detect_language_with_no_answer_is_undetermined(
    analyser: ComprehendTextAnalyser, stubber: Stubber
) -> None:
    stubber.add_response("detect_dominant_language", {"Languages": []}, {"Text": "zzzz"})
    assert analyser.detect_language("zzzz") == {"LanguageCode": "und", "Score": 0.0}


# --- calls that must not be made ---------------------------------------------------------


def test_blank_text_is_never_sent(analyser: ComprehendTextAnalyser, stubber: Stubber) -> None:
    assert analyser.entities("  ", "en") == []
    assert analyser.key_phrases("", "en") == []
    assert analyser.detect_language("\n") == {"LanguageCode": "und", "Score": 0.0}
    assert analyser.sentiment(["", " "], "en") == [NEUTRAL_SENTIMENT, NEUTRAL_SENTIMENT]


@pytest.mark.parametrize("language", ["sv", "ru", "nl", "und"])
def test_unsupported_language_makes_no_call(
    analyser: ComprehendTextAnalyser, stubber: Stubber, language: str
) -> None:
    assert analyser.entities("Jag heter Anna och bor i Stockholm.", language) == []
    assert analyser.key_phrases("Jag heter Anna och bor i Stockholm.", language) == []
    assert analyser.sentiment(["Jag är glad."], language) == []


@pytest.mark.parametrize(
    ("method", "args", "capability"),
    [
        ("sentiment", (["hi there"], "en"), "sentiment"),
        ("entities", (TWEET, "en"), "entities"),
        ("key_phrases", (TWEET, "en"), "key_phrases"),
        ("detect_language", (TWEET,), "language"),
    ],
)
def test_disabled_capability_makes_no_call(
    client: Any, stubber: Stubber, method: str, args: tuple[Any, ...], capability: str
) -> None:
    others = frozenset({"sentiment", "entities", "key_phrases", "language"} - {capability})
    analyser = ComprehendTextAnalyser(client, capabilities=others)
    with pytest.raises(CapabilityDisabled) as raised:
        getattr(analyser, method)(*args)
    assert raised.value.capability == capability


def test_unknown_capability_is_rejected(client: Any) -> None:
    with pytest.raises(ValueError, match="syntax"):
        ComprehendTextAnalyser(client, capabilities=frozenset({"entities", "syntax"}))


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("en", "en"),
        ("en-GB", "en"),
        ("PT-br", "pt"),
        ("zh", "zh"),
        ("zh-Hans", "zh"),
        ("zh-TW", "zh-TW"),
        ("zh-Hant", "zh-TW"),
        ("sv", None),
        ("und", None),
    ],
)
def test_comprehend_language(tag: str, code: str | None) -> None:
    assert comprehend_language(tag) == code


def test_matches_the_text_analyser_port() -> None:
    for name in ("sentiment", "entities", "key_phrases", "detect_language"):
        port = inspect.signature(getattr(TextAnalyser, name))
        impl = inspect.signature(getattr(ComprehendTextAnalyser, name))
        assert list(port.parameters) == list(impl.parameters), name
