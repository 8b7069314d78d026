"""LexConversation against botocore's Stubber, with RecognizeText's documented response shape."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from chalicelib.responders.lex import LexConversation, lex_session_id

BOT_ID, ALIAS_ID = "MAGPIEBOT1", "TSTALIASID"
HELP = "I'm Magpie. Ask me for a joke or a fact."


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    )
    lex = session.client("lexv2-runtime")
    with Stubber(lex) as stubber:
        lex.stubber = stubber
        yield lex
        stubber.assert_no_pending_responses()


def expect(client, text: str, session_id: str, response: dict, locale: str = "en_GB") -> None:
    client.stubber.add_response(
        "recognize_text",
        response,
        {
            "botId": BOT_ID,
            "botAliasId": ALIAS_ID,
            "localeId": locale,
            "sessionId": session_id,
            "text": text,
        },
    )


def recognised(intent: str, content: str | None, interpretations: list[dict]) -> dict:
    response = {
        "sessionState": {
            "dialogAction": {"type": "Close"},
            "intent": {
                "name": intent,
                "slots": {},
                "state": "Fulfilled",
                "confirmationState": "None",
            },
            "sessionAttributes": {},
            "originatingRequestId": "0f1e2d3c-0000-4000-8000-000000000000",
        },
        "interpretations": interpretations,
        "sessionId": "alice",
    }
    if content is not None:
        response["messages"] = [{"content": content, "contentType": "PlainText"}]
    return response


def interpretation(intent: str, score: float | None = None) -> dict:
    found = {"intent": {"name": intent, "slots": {}}, "interpretationSource": "Lex"}
    if score is not None:
        found["nluConfidence"] = {"score": score}
    return found


def test_a_joke_comes_back_with_its_intent_and_confidence(client):
    joke = "Why did the scarecrow win an award? Because he was outstanding in his field."
    expect(
        client,
        "@MagpieBot tell me a joke",
        "alice",
        recognised(
            "Joke",
            joke,
            [
                interpretation("Joke", 0.93),
                interpretation("FallbackIntent"),
                interpretation("Fact", 0.21),
            ],
        ),
    )
    answer = LexConversation(client, BOT_ID, ALIAS_ID).ask("@MagpieBot tell me a joke", "alice")
    assert answer == {"Intent": "Joke", "Confidence": 0.93, "Message": joke}


def test_a_fallback_reports_the_best_score_that_fell_short(client):
    # Lex gives the fallback no nluConfidence; like the local matcher, report the closest intent's.
    expect(
        client,
        "purple monkey dishwasher",
        "alice",
        recognised(
            "FallbackIntent",
            HELP,
            [
                interpretation("FallbackIntent"),
                interpretation("Joke", 0.41),
                interpretation("Fact", 0.12),
            ],
        ),
        locale="en_US",
    )
    conversation = LexConversation(client, BOT_ID, ALIAS_ID, locale_id="en_US")
    answer = conversation.ask("purple monkey dishwasher", "alice")
    assert answer == {"Intent": "FallbackIntent", "Confidence": 0.41, "Message": HELP}


def test_several_messages_are_joined_and_none_gives_an_empty_message(client):
    two = recognised("Fact", None, [interpretation("Fact", 0.8)])
    two["messages"] = [
        {"content": "Did you know?", "contentType": "PlainText"},
        {"content": "<speak>skip</speak>", "contentType": "SSML"},
        {"content": "Octopuses have three hearts.", "contentType": "PlainText"},
    ]
    expect(client, "fact", "alice", two)
    expect(client, "fact", "alice", recognised("Fact", None, [interpretation("Fact", 0.8)]))
    conversation = LexConversation(client, BOT_ID, ALIAS_ID)

    assert conversation.ask("fact", "alice")["Message"] == (
        "Did you know? Octopuses have three hearts."
    )
    assert conversation.ask("fact", "alice") == {"Intent": "Fact", "Confidence": 0.8, "Message": ""}


def test_session_ids_and_long_texts_are_fitted_to_lexs_limits(client):
    long_text = "tell me a joke " * 100
    expect(
        client,
        long_text[:1024],
        "_Bob_the_builder_",
        recognised("Joke", "ha", [interpretation("Joke", 0.9)]),
    )
    LexConversation(client, BOT_ID, ALIAS_ID).ask(long_text, "@Bob the builder!")


@pytest.mark.parametrize(
    ("given", "sent"),
    [("a", "a_"), ("1234567890", "1234567890"), ("x" * 150, "x" * 100), ("é:ok.-_", "_:ok.-_")],
)
def test_lex_session_id(given, sent):
    assert lex_session_id(given) == sent


def test_empty_text_is_refused_without_calling_lex(client):
    with pytest.raises(ValueError, match="empty"):
        LexConversation(client, BOT_ID, ALIAS_ID).ask(" \n", "alice")


def test_a_lex_error_is_raised_not_swallowed(client):
    client.stubber.add_client_error(
        "recognize_text", service_error_code="ThrottlingException", http_status_code=429
    )
    with pytest.raises(ClientError, match="ThrottlingException"):
        LexConversation(client, BOT_ID, ALIAS_ID).ask("tell me a joke", "alice")


def test_create_builds_a_lexv2_runtime_client_for_the_region(monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    conversation = LexConversation.create(BOT_ID, ALIAS_ID, "en_US", region="eu-west-2")
    assert conversation.client.meta.service_model.service_name == "lexv2-runtime"
    assert conversation.client.meta.region_name == "eu-west-2"
    assert (conversation.bot_id, conversation.locale_id) == (BOT_ID, "en_US")


def test_the_bot_is_asked_in_the_locale_the_responder_chose(client):
    # One alias, many locales: RecognizeText names the locale on every call.
    expect(
        client,
        "cuéntame un chiste",
        "alice",
        recognised("Joke", "¿Qué le dice un techo a otro? Techo de menos.", [
            interpretation("Joke", 0.88), interpretation("FallbackIntent"),
        ]),
        locale="es_ES",
    )  # fmt: skip
    expect(
        client, "tell me a joke", "alice", recognised("Joke", "ha", [interpretation("Joke", 0.9)])
    )
    conversation = LexConversation(client, BOT_ID, ALIAS_ID)
    answer = conversation.ask("cuéntame un chiste", "alice", locale="es_ES")
    assert (answer["Intent"], answer["Confidence"]) == ("Joke", 0.88)
    assert conversation.ask("tell me a joke", "alice", locale=None)["Message"] == "ha"
