"""bot.json: the one bot definition both Lex (via the infrastructure) and the local matcher use."""

from __future__ import annotations

import copy
import json

import pytest

from chalicelib.responders.bot_definition import (
    BOT_FILE,
    BotDefinitionError,
    intents_for_locale,
    load_bot_definition,
    parse_bot_definition,
    parse_reply_texts,
)
from chalicelib.responders.languages import CONTENT_DIR, reply_texts

# The reference bot's sample utterances (makit/aws-serverless-twitter-bot, responding-stack.ts).
REFERENCE_UTTERANCES = {
    "Joke": [
        "please tell me a joke",
        "I would like to hear a joke",
        "make me laugh",
        "have you got a good joke",
    ],
    "Fact": [
        "please tell me a fact",
        "I would like to hear a fact",
        "tell me something interesting",
        "I'd like to hear something interesting",
    ],
}

# Keys of CloudFormation's AWS::Lex::Bot IntentProperty that bot.json uses: the infrastructure
# passes each intent through as is.
CFN_INTENT_KEYS = {
    "name",
    "description",
    "sampleUtterances",
    "fulfillmentCodeHook",
    "parentIntentSignature",
}


def raw_bot() -> dict:
    return json.loads(BOT_FILE.read_text(encoding="utf-8"))


def test_the_bundled_definition_describes_magpie_bot():
    bot = load_bot_definition()
    assert bot.name == "MagpieBot"
    assert bot.locales == (
        "en_GB", "en_US", "es_ES", "fr_FR", "de_DE", "it_IT", "pt_BR", "nl_NL", "ja_JP"
    )  # fmt: skip
    assert bot.languages == ("en", "es", "fr", "de", "it", "pt", "nl", "ja")
    assert bot.nlu_confidence_threshold == 0.6
    assert [i.name for i in bot.intents] == ["Joke", "Fact", "FallbackIntent"]
    assert bot.intent("FallbackIntent").is_fallback
    assert all(i.fulfillment_code_hook for i in bot.intents)


def test_it_keeps_every_reference_utterance_and_adds_many_more():
    bot = load_bot_definition()
    for intent, utterances in REFERENCE_UTTERANCES.items():
        assert set(utterances) <= set(bot.intent(intent).utterances)
        assert len(bot.intent(intent).utterances) >= 20


def test_the_help_message_says_what_the_bot_can_do():
    help_message = load_bot_definition().help_message.lower()
    assert "joke" in help_message
    assert "fact" in help_message
    assert "photo" in help_message
    assert "recognise" in help_message
    assert len(help_message) <= 200


def test_every_sentence_the_bot_says_is_in_bot_json():
    bot = load_bot_definition()
    for reason in ("host_not_allowed", "not_an_image", "too_large", "timeout"):
        assert bot.media_reason(reason) != bot.media_reason("default"), reason
    assert bot.media_reason("never-heard-of-it") == bot.media_reasons["default"]
    handlers = BOT_FILE.with_name("handlers.py").read_text()
    for sentence in bot.replies.values():
        assert sentence not in handlers  # the code reads the words, never repeats them


def test_intents_use_only_cloudformation_intent_keys():
    for intent in raw_bot()["intents"]:
        assert set(intent) <= CFN_INTENT_KEYS, intent["name"]
        assert intent["fulfillmentCodeHook"] == {"enabled": True}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda b: b.update(nluConfidenceThreshold=0), "nluConfidenceThreshold"),
        (lambda b: b.update(nluConfidenceThreshold=1.2), "nluConfidenceThreshold"),
        (lambda b: b.update(localeIds=[]), "no locales"),
        (lambda b: b.update(helpMessage=" "), "helpMessage"),
        (lambda b: b["intents"][0].update(sampleUtterances=[]), "Joke: needs"),
        (lambda b: b["intents"][1].update(sampleUtterances=[{"utterance": "joke"}]), "both"),
        (lambda b: b["intents"][2].update(sampleUtterances=[{"utterance": "hi"}]), "fallback"),
        (lambda b: b["intents"].pop(), "exactly one"),
        (lambda b: b.pop("name"), "missing"),
        (lambda b: b["replies"].pop("negative"), "replies lacks negative"),
        (lambda b: b["mediaReasons"].pop("default"), "mediaReasons lacks 'default'"),
    ],
)
def test_an_invalid_definition_is_refused(change, complaint):
    raw = copy.deepcopy(raw_bot())
    change(raw)
    with pytest.raises(BotDefinitionError, match=complaint):
        parse_bot_definition(raw)


# --- locales and languages ----------------------------------------------------------------


def cloudformation_keys(value):
    """bot.json's camelCase keys as CloudFormation's (sampleUtterances -> SampleUtterances)."""
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: cloudformation_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [cloudformation_keys(v) for v in value]
    return value


@pytest.mark.parametrize("locale", raw_bot()["localeIds"])
def test_every_locale_is_a_bot_locale_cloudformation_accepts(locale):
    # The AWS::Lex::Bot resource schema cfn-lint ships (the template test lints the whole
    # stack too): each locale exactly as the stack builds it from bot.json.
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
    from jsonschema import Draft7Validator

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("eu-west-2", "AWS::Lex::Bot").schema
    raw = raw_bot()
    bot_locale = {
        "LocaleId": locale,
        "NluConfidenceThreshold": raw["nluConfidenceThreshold"],
        "Intents": cloudformation_keys(intents_for_locale(raw, locale)),
    }
    validator = Draft7Validator({"$ref": "#/definitions/BotLocale", **schema})
    assert [e.message for e in validator.iter_errors(bot_locale)] == []
    intents = {i["Name"]: i for i in bot_locale["Intents"]}
    assert set(intents) == {"Joke", "Fact", "FallbackIntent"}
    assert len(intents["Joke"]["SampleUtterances"]) >= 20
    assert len(intents["Fact"]["SampleUtterances"]) >= 20
    assert "SampleUtterances" not in intents["FallbackIntent"]


def test_each_language_has_its_own_utterances_and_english_shares_the_intents():
    bot = load_bot_definition()
    joke = bot.intent("Joke")
    assert bot.utterances(joke, "en_GB") == bot.utterances(joke, "en_US") == joke.utterances
    others = [bot.utterances(joke, loc) for loc in bot.locales if not loc.startswith("en")]
    assert len(others) == 7 and not set(joke.utterances) & {u for o in others for u in o}
    assert bot.locale_for("pt") == "pt_BR" and bot.locale_for("ru") is None


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda b: b["utterancesByLocale"].pop("fr_FR"), "fr_FR: no utterancesByLocale"),
        (lambda b: b["utterancesByLocale"]["de_DE"].pop("Fact"), "de_DE: utterances for"),
        (lambda b: b["utterancesByLocale"]["ja_JP"].update(Joke=[]), "ja_JP Joke: needs"),
        (lambda b: b["utterancesByLocale"].update(ko_KR={}), "ko_KR, which is not"),
        (lambda b: b["utterancesByLocale"]["es_ES"]["Fact"].append("chiste"), "both"),
        (lambda b: b["localeIds"].append("en_GB"), "localeIds repeat"),
        (lambda b: b["people"].pop("nobody"), "people lacks nobody"),
        (lambda b: b["unspokenLanguage"].pop("short"), "unspokenLanguage lacks short"),
    ],
)
def test_an_invalid_locale_is_refused(change, complaint):
    raw = copy.deepcopy(raw_bot())
    change(raw)
    with pytest.raises(BotDefinitionError, match=complaint):
        parse_bot_definition(raw)


def raw_texts(language):
    return json.loads((CONTENT_DIR / f"texts.{language}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("language", load_bot_definition().languages[1:])
def test_every_language_has_every_text_with_the_englishs_placeholders(language):
    texts = parse_reply_texts(raw_texts(language), load_bot_definition())
    assert texts.language == language
    assert reply_texts(language) == texts


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda t: t["replies"].pop("photosAll"), "replies keys differ"),
        (lambda t: t["replies"].update(photosAll="las fotos"), "photosAll changes the placeh"),
        (lambda t: t["people"].update(recognised=" "), "people.recognised is empty"),
        (lambda t: t["mediaReasons"].update(extra="?"), "mediaReasons keys differ"),
        (lambda t: t.pop("englishOnly"), "missing"),
    ],
)
def test_a_translation_that_drifts_from_the_english_is_refused(change, complaint):
    raw = raw_texts("es")
    change(raw)
    with pytest.raises(BotDefinitionError, match=complaint):
        parse_reply_texts(raw, load_bot_definition())


def test_a_language_without_texts_is_answered_with_the_english_ones():
    assert reply_texts("ko") == load_bot_definition().texts
