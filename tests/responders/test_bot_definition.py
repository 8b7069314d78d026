"""bot.json: the one bot definition both Lex (via the infrastructure) and the local matcher use."""

from __future__ import annotations

import copy
import json

import pytest

from chalicelib.responders.bot_definition import (
    BOT_FILE,
    BotDefinitionError,
    load_bot_definition,
    parse_bot_definition,
)

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
    assert bot.locales == ("en_GB", "en_US")
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
