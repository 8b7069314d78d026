"""The local intent matcher and the local Conversation built on it."""

from __future__ import annotations

import copy
import json
import random

import pytest

from chalicelib.responders.bot_definition import BOT_FILE, parse_bot_definition
from chalicelib.responders.fulfilment import joke_pool, load_content, reply_for_intent
from chalicelib.responders.intents import (
    LocalConversation,
    LocalIntentMatcher,
    normalise,
    word_similarity,
)
from tests.responders.test_bot_definition import REFERENCE_UTTERANCES

THRESHOLD = 0.6


@pytest.fixture(scope="module")
def matcher() -> LocalIntentMatcher:
    return LocalIntentMatcher()


@pytest.mark.parametrize(
    ("text", "intent"),
    [(u, intent) for intent, utterances in REFERENCE_UTTERANCES.items() for u in utterances],
)
def test_the_reference_utterances_match_their_intent_with_full_confidence(matcher, text, intent):
    assert matcher.match(text) == (intent, 1.0)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("@MagpieBot hey, can you tell me a joke please?", "Joke"),
        ("Tell Me A Joke!!! 😂 https://t.co/abc123", "Joke"),
        ("tel me a joek", "Joke"),
        ("pls tell me a jokee", "Joke"),
        ("do you know a good joke", "Joke"),
        ("jokes", "Joke"),
        ("tell me a fact about space", "Fact"),
        ("tell me an intresting fakt", "Fact"),
        ("Any fun facts today @MagpieBot?", "Fact"),
        ("gimme a fact", "Fact"),
        ("share something interesting with me", "Fact"),
    ],
)
def test_paraphrases_and_typos_still_match(matcher, text, intent):
    found, confidence = matcher.match(text)
    assert found == intent
    assert THRESHOLD <= confidence <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "purple monkey dishwasher",
        "hello",
        "what is the weather in London",
        "the quick brown fox jumps over the lazy dog",
        "this bot is a joke and you are useless",
        "what can you do",
        "tell me",
        "Raconte-moi une blague",
        "😂😂😂",
        "@MagpieBot https://t.co/abc123",
        "",
    ],
)
def test_anything_else_falls_back_below_the_threshold(matcher, text):
    intent, confidence = matcher.match(text)
    assert intent == "FallbackIntent"
    assert 0.0 <= confidence < THRESHOLD


def test_explain_names_the_closest_utterance(matcher):
    found = matcher.explain("please tell me a joke about cats")
    assert (found.intent, found.closest_intent) == ("Joke", "Joke")
    assert found.closest_utterance == "please tell me a joke"
    # All of the utterance is there; "about cats" is not explained by it.
    assert found.recall == 1.0
    assert 0.3 < found.precision < 1.0


def test_a_fallback_still_reports_what_came_closest(matcher):
    found = matcher.explain("tell me")
    assert found.intent == "FallbackIntent"
    assert found.closest_intent in ("Joke", "Fact")
    assert 0.3 < found.confidence < THRESHOLD


def test_the_threshold_comes_from_the_bot_definition():
    raw = json.loads(BOT_FILE.read_text(encoding="utf-8"))
    strict = copy.deepcopy(raw) | {"nluConfidenceThreshold": 0.95}
    typo = "tel me a joek"
    assert LocalIntentMatcher(parse_bot_definition(raw)).match(typo)[0] == "Joke"
    assert LocalIntentMatcher(parse_bot_definition(strict)).match(typo)[0] == "FallbackIntent"


def test_normalise_drops_handles_links_accents_and_punctuation():
    assert normalise("@Magpie_Bot Café? I'd LIKE https://x.co/a a JOKE!!") == "cafe id like a joke"


@pytest.mark.parametrize(
    ("a", "b", "similarity"),
    [("joke", "joke", 1.0), ("joek", "joke", 0.75), ("jokes", "joke", 0.8), ("me", "my", 0.0)],
)
def test_word_similarity_forgives_one_typo_but_not_a_different_word(a, b, similarity):
    assert word_similarity(a, b) == pytest.approx(similarity)


def test_confidence_is_always_within_zero_and_one(matcher):
    rng = random.Random(3)
    vocabulary = [
        "tell",
        "me",
        "a",
        "joke",
        "fact",
        "please",
        "something",
        "interesting",
        "jok",
        "fakt",
        "hey",
        "x",
    ]
    for _ in range(200):
        text = " ".join(rng.choices(vocabulary, k=rng.randint(1, 12)))
        assert 0.0 <= matcher.match(text)[1] <= 1.0


class TestLocalConversation:
    def test_a_joke_request_gets_a_vetted_joke(self, matcher):
        answer = LocalConversation(matcher).ask("@MagpieBot tell me a joke", "alice")
        assert answer["Intent"] == "Joke"
        assert answer["Confidence"] == 1.0
        assert answer["Message"] in joke_pool()

    def test_a_fact_request_gets_a_bundled_fact(self, matcher):
        answer = LocalConversation(matcher).ask("any fun facts?", "alice")
        assert answer["Intent"] == "Fact"
        assert answer["Message"] in load_content("facts.json")

    def test_anything_else_gets_the_help_message(self, matcher):
        answer = LocalConversation(matcher).ask("purple monkey dishwasher", "alice")
        assert answer == {
            "Intent": "FallbackIntent",
            "Confidence": answer["Confidence"],
            "Message": matcher.definition.help_message,
        }

    def test_it_replies_exactly_as_the_lex_code_hook_would(self, matcher):
        # Same intent, same random draw -> same text: the reply never depends on the backend.
        for seed in range(5):
            local = LocalConversation(matcher, rng=random.Random(seed))
            assert local.ask("tell me a joke", "s")["Message"] == reply_for_intent(
                "Joke", random.Random(seed)
            )

    def test_empty_text_is_refused_like_lex_refuses_it(self, matcher):
        with pytest.raises(ValueError, match="empty"):
            LocalConversation(matcher).ask("  ", "alice")


# --- one matcher per locale ---------------------------------------------------------------

BOT = parse_bot_definition(json.loads(BOT_FILE.read_text(encoding="utf-8")))


@pytest.mark.parametrize("locale", BOT.locales)
def test_each_locale_matches_its_own_utterances_from_bot_json(locale):
    matcher = LocalIntentMatcher(BOT, locale)
    for intent in BOT.matchable_intents:
        for utterance in BOT.utterances(intent, locale):
            assert matcher.match(utterance) == (intent.name, 1.0), (locale, utterance)


@pytest.mark.parametrize(
    ("locale", "text", "intent"),
    [
        ("es_ES", "@MagpieBot ¿me cuentas un chiste?", "Joke"),
        ("es_ES", "dime un dato curioso sobre Madrid", "Fact"),
        ("fr_FR", "tu peux me raconter une blague ?", "Joke"),
        ("fr_FR", "C'est une journée magnifique, merci beaucoup !", "FallbackIntent"),
        ("de_DE", "kennst du einen guten Witz über Katzen?", "Joke"),
        ("de_DE", "ich liebe das neue Logo", "FallbackIntent"),
        ("it_IT", "dimmi una curiosità sullo spazio", "Fact"),
        ("pt_BR", "me conta uma curiosidade sobre o Brasil", "Fact"),
        ("nl_NL", "vertel me eens een goeie grap", "Joke"),
        ("nl_NL", "slechte service, niemand reageert", "FallbackIntent"),
        ("ja_JP", "ジョークを教えてください", "Joke"),
        ("ja_JP", "何か豆知識を教えてくれる？", "Fact"),
        ("ja_JP", "サービスが最悪です", "FallbackIntent"),
    ],
)
def test_a_locale_recognises_requests_written_freely_in_its_language(locale, text, intent):
    assert LocalIntentMatcher(BOT, locale).match(text)[0] == intent


def test_an_english_request_is_not_a_french_one():
    # Each locale knows only its own words, so the responder can tell a French message
    # asking in English from one that asks for nothing.
    assert LocalIntentMatcher(BOT, "fr_FR").match("tell me a joke")[0] == "FallbackIntent"
    assert LocalIntentMatcher(BOT, "en_GB").match("raconte-moi une blague")[0] == "FallbackIntent"


def test_japanese_is_read_as_character_pairs_with_its_voicing_marks_kept():
    assert normalise("ジョークを教えて！") == "ジョ ョー ーク クを を教 教え えて"
    assert normalise("ｼﾞｮｰｸ") == "ジョ ョー ーク"  # half-width kana, as some keyboards type
    assert normalise("Ｆｕｌｌ ｗｉｄｔｈ") == "full width"
    assert normalise("¿Qué tal? Ça va, Straße") == "que tal ca va strasse"


def test_an_unknown_locale_is_refused():
    with pytest.raises(ValueError, match="ko_KR"):
        LocalIntentMatcher(BOT, "ko_KR")


def test_the_local_conversation_answers_in_the_locale_it_is_asked_in():
    conversation = LocalConversation(LocalIntentMatcher(BOT), rng=random.Random(2))
    answer = conversation.ask("raconte-moi une blague", "alice", locale="fr_FR")
    assert answer["Intent"] == "Joke"
    assert answer["Message"] == reply_for_intent("Joke", random.Random(2), "fr")
    fallback = conversation.ask("raconte-moi une blague", "alice")  # the English locale
    assert fallback["Intent"] == "FallbackIntent"
    assert fallback["Message"] == BOT.help_message
