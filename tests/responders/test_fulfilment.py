"""The Lex V2 fulfilment code hook, the replies, and the bundled content behind them."""

from __future__ import annotations

import functools
import json
import random
import re

import botocore.session
import pytest
from botocore.validate import ParamValidator

from chalicelib.egress.text_fit import weighted_length
from chalicelib.responders.bot_definition import load_bot_definition, locale_language
from chalicelib.responders.fulfilment import (
    JOKE_BLOCKLIST,
    MAX_REPLY_CHARS,
    UnknownIntentError,
    fact_pool,
    joke_pool,
    lex_fulfilment,
    load_content,
    reply_for_intent,
)
from chalicelib.responders.languages import CONTENT_DIR, REPLY_LIMIT, reply_texts
from tests.conftest import ROOT

URL_LIKE = re.compile(r"https?://|www\.|\b[\w-]+\.(com|org|net|io|co|uk|ly|ch)\b", re.I)
MENTION_OR_HASHTAG = re.compile(r"[@#]\w")


def code_hook_event(intent: str, source: str = "FulfillmentCodeHook") -> dict:
    """A Lex V2 Lambda input event, with the fields the Lex V2 developer guide documents."""
    intent_state = {
        "name": intent,
        "slots": {},
        "state": "ReadyForFulfillment",
        "confirmationState": "None",
    }
    return {
        "messageVersion": "1.0",
        "invocationSource": source,
        "inputMode": "Text",
        "responseContentType": "text/plain; charset=utf-8",
        "sessionId": "1234567890",
        "inputTranscript": "please tell me a joke",
        "invocationLabel": "",
        "bot": {
            "id": "MAGPIEBOT1",
            "name": "MagpieBot",
            "localeId": "en_GB",
            "version": "1",
            "aliasId": "TSTALIASID",
            "aliasName": "live",
        },
        "interpretations": [
            {"intent": intent_state, "nluConfidence": 0.93, "interpretationSource": "Lex"},
            {"intent": {"name": "FallbackIntent", "slots": {}, "state": "InProgress"}},
        ],
        "proposedNextState": {},
        "requestAttributes": {},
        "sessionState": {
            "activeContexts": [],
            "sessionAttributes": {"author": "alice"},
            "intent": intent_state,
            "originatingRequestId": "0f1e2d3c-0000-4000-8000-000000000000",
        },
        "transcriptions": [],
    }


def assert_lex_shaped(response: dict) -> None:
    """Validate against Lex V2's own SessionState and Messages shapes (as PutSession takes them)."""
    model = botocore.session.get_session().get_service_model("lexv2-runtime")
    request = {
        "botId": "MAGPIEBOT1",
        "botAliasId": "TSTALIASID",
        "localeId": "en_GB",
        "sessionId": "1234567890",
        **response,
    }
    report = ParamValidator().validate(request, model.operation_model("PutSession").input_shape)
    assert not report.has_errors(), report.generate_report()


@pytest.mark.parametrize("intent", ["Joke", "Fact", "FallbackIntent"])
def test_a_fulfilment_event_gets_a_closed_fulfilled_plain_text_reply(intent):
    response = lex_fulfilment(code_hook_event(intent), rng=random.Random(1))

    assert_lex_shaped(response)
    state = response["sessionState"]
    assert state["dialogAction"] == {"type": "Close"}
    assert state["intent"]["name"] == intent
    assert state["intent"]["state"] == "Fulfilled"
    assert state["sessionAttributes"] == {"author": "alice"}
    [message] = response["messages"]
    assert message["contentType"] == "PlainText"
    assert message["content"] == reply_for_intent(intent, random.Random(1))


def test_the_fallback_answers_with_the_bots_help():
    response = lex_fulfilment(code_hook_event("FallbackIntent"))
    assert response["messages"][0]["content"] == load_bot_definition().help_message


def test_a_dialog_code_hook_lets_lex_carry_on():
    response = lex_fulfilment(code_hook_event("Joke", source="DialogCodeHook"))
    assert_lex_shaped(response)
    assert response["sessionState"]["dialogAction"] == {"type": "Delegate"}
    assert "messages" not in response


def test_an_event_that_is_not_a_code_hook_is_refused():
    with pytest.raises(ValueError, match="invocationSource"):
        lex_fulfilment(code_hook_event("Joke", source="Something"))


def test_an_intent_the_code_does_not_know_is_an_error_not_a_silent_reply():
    with pytest.raises(UnknownIntentError, match="OrderPizza"):
        lex_fulfilment(code_hook_event("OrderPizza"))


@pytest.mark.parametrize("intent", ["Joke", "Fact", "FallbackIntent"])
def test_replies_are_never_empty_and_always_fit_a_post(intent):
    rng = random.Random(42)
    replies = {reply_for_intent(intent, rng) for _ in range(300)}
    assert all(r.strip() and len(r) <= 280 - len("@abcdefghijklmno ") for r in replies)
    if intent != "FallbackIntent":
        assert len(replies) > 20  # really random, not one canned line


def test_jokes_come_from_pyjokes_and_from_our_own_list():
    import pyjokes

    pool = set(joke_pool())
    ours = set(load_content("jokes.json"))
    library = set(pyjokes.get_jokes(language="en", category="neutral"))
    assert ours <= pool
    assert len(pool & library) > 100


def test_pyjokes_dark_jokes_are_left_out():
    import pyjokes

    library = pyjokes.get_jokes(language="en", category="neutral")
    blocked = [j for j in library if JOKE_BLOCKLIST.search(j)]
    assert blocked, "the blocklist should have something to block in pyjokes' neutral set"
    assert not set(blocked) & set(joke_pool())


class TestBundledContent:
    @pytest.mark.parametrize(("name", "minimum"), [("facts.json", 50), ("jokes.json", 20)])
    def test_it_is_a_long_list_of_short_distinct_clean_lines(self, name, minimum):
        items = load_content(name)
        assert len(items) >= minimum
        normalised = [re.sub(r"\W+", " ", i).strip().casefold() for i in items]
        assert len(set(normalised)) == len(items), "duplicates"
        for item in items:
            assert len(item) <= 200, item
            assert item.isprintable(), item
            assert not URL_LIKE.search(item), item
            assert not MENTION_OR_HASHTAG.search(item), item
            assert item[-1] in ".!?", item

    def test_our_jokes_pass_the_same_blocklist_as_pyjokes(self):
        assert not [j for j in load_content("jokes.json") if JOKE_BLOCKLIST.search(j)]

    def test_every_pooled_joke_leaves_room_for_a_mention(self):
        assert max(len(j) for j in joke_pool()) <= MAX_REPLY_CHARS


# --- languages ----------------------------------------------------------------------------


def localised_event(intent: str, locale: str) -> dict:
    event = code_hook_event(intent)
    event["bot"]["localeId"] = locale
    return event


@pytest.mark.parametrize("locale", load_bot_definition().locales)
def test_the_code_hook_answers_in_the_language_of_the_locale_lex_was_asked_in(locale):
    language = locale_language(locale)
    for intent, pool in (("Joke", joke_pool(language)), ("Fact", fact_pool(language))):
        response = lex_fulfilment(localised_event(intent, locale), rng=random.Random(3))
        assert_lex_shaped(response)
        content = response["messages"][0]["content"]
        if pool:
            assert content in pool
        else:  # no content in this language yet: English, said to be English
            note = reply_texts(language).english_only
            assert content.startswith(f"{note} ")
    help_response = lex_fulfilment(localised_event("FallbackIntent", locale))
    assert help_response["messages"][0]["content"] == reply_texts(language).help_message


def language_files(kind: str) -> list:
    return sorted(CONTENT_DIR.glob(f"{kind}.*.json"))


@pytest.mark.parametrize(
    "path", language_files("jokes") + language_files("facts"), ids=lambda p: p.name
)
def test_every_language_file_is_sourced_short_and_in_its_language(path):
    from chalicelib.analysis.local_text import LocalTextAnalyser

    language = path.name.split(".")[1]
    assert language in load_bot_definition().languages
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["language"] == language
    assert all(entry["source"].strip() for entry in raw["entries"])
    detector = LocalTextAnalyser()
    for text in load_content(path.name):
        assert weighted_length(text) <= 230, text
        assert not URL_LIKE.search(text) and not MENTION_OR_HASHTAG.search(text), text
        assert detector.detect_language(text)["LanguageCode"] == language, text


@pytest.mark.parametrize("pool", [joke_pool, fact_pool], ids=["jokes", "facts"])
def test_every_english_joke_and_fact_is_read_as_english(pool):
    """As every other language's file: the whole pool, pyjokes' share included, so a random
    draw can never be a reply the detector takes for another language."""
    from chalicelib.analysis.local_text import LocalTextAnalyser

    detector = LocalTextAnalyser()
    misread = [t for t in pool() if detector.detect_language(t)["LanguageCode"] != "en"]
    assert misread == []


@pytest.mark.parametrize("name", ["jokes.json", "facts.json"])
def test_the_english_content_carries_its_sources_too(name):
    raw = json.loads((CONTENT_DIR / name).read_text(encoding="utf-8"))
    assert raw["language"] == "en"
    assert all(entry["text"].strip() and entry["source"].strip() for entry in raw["entries"])


def test_a_content_file_without_sources_is_refused(tmp_path, monkeypatch):
    import chalicelib.responders.fulfilment as fulfilment

    (tmp_path / "jokes.xx.json").write_text(
        json.dumps({"language": "xx", "entries": [{"text": "Ha."}]}), encoding="utf-8"
    )
    (tmp_path / "facts.yy.json").write_text(
        json.dumps({"language": "zz", "entries": [{"text": "F.", "source": "s"}]}),
        encoding="utf-8",
    )
    monkeypatch.setattr(fulfilment, "CONTENT_DIR", tmp_path)
    load_content.cache_clear()
    try:
        with pytest.raises(ValueError, match="source"):
            load_content("jokes.xx.json")
        with pytest.raises(ValueError, match="language is 'zz'"):
            load_content("facts.yy.json")
    finally:
        load_content.cache_clear()


def test_a_language_without_its_own_jokes_gets_english_ones_said_so_and_still_fitting(
    monkeypatch,
):
    import chalicelib.responders.fulfilment as fulfilment

    english = joke_pool()
    assert joke_pool("ko") == ()  # no file: what a language awaiting its content has
    # Japanese as it was before its jokes came: its note weighs 2 a character.
    monkeypatch.setattr(
        fulfilment, "joke_pool", lambda language="en": english if language == "en" else ()
    )
    monkeypatch.setattr(
        fulfilment, "_noted_english", functools.cache(fulfilment._noted_english.__wrapped__)
    )
    note = reply_texts("ja").english_only
    rng = random.Random(5)
    replies = {reply_for_intent("Joke", rng, "ja") for _ in range(100)}
    assert len(replies) > 20
    for reply in replies:
        assert reply.startswith(f"{note} ") and reply.removeprefix(f"{note} ") in english
        assert weighted_length(reply) <= REPLY_LIMIT


@pytest.mark.parametrize("locale", load_bot_definition().locales)
def test_every_locales_responses_pass_aws_code_hook_response_schema(locale):
    # AWS's own schema for a Lex V2 code hook Lambda's answer (tests/fixtures/lex/README.md).
    from jsonschema import Draft201909Validator

    schema = json.loads((ROOT / "tests/fixtures/lex/LexCodeHookResponseSchema.json").read_text())
    validator = Draft201909Validator(schema)
    for intent in ("Joke", "Fact", "FallbackIntent"):
        for source in ("FulfillmentCodeHook", "DialogCodeHook"):
            event = localised_event(intent, locale)
            event["invocationSource"] = source
            response = lex_fulfilment(event, rng=random.Random(7))
            assert [e.message for e in validator.iter_errors(response)] == [], (intent, source)
