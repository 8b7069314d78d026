"""Fulfilment of the bot's intents: the Lex V2 code hook and the replies themselves.

On AWS, Lex calls `lex_fulfilment` (the core app's Lambda) for every intent, the fallback
included; locally, `intents.LocalConversation` calls it with the same event shape. So the
reply for an intent never depends on the backend.

Replies come only from bundled, vetted content (no network at run time), in the language of
the locale Lex was asked in (the event's `bot.localeId`): in English, jokes from pyjokes'
"neutral" English set, minus a documented blocklist, plus our own `content/jokes.json`, and
facts from `content/facts.json`; in another language, `content/jokes.<language>.json` and
`content/facts.<language>.json` (pyjokes' jokes in that language are already curated into
them, each entry with its source). A language without its file gets English content after
a short note in its own words. The fallback gets the bot's help in that language.
"""

from __future__ import annotations

import json
import logging
import random
import re
from functools import lru_cache
from typing import Any

from chalicelib.errors import InputError
from chalicelib.responders.annotate import MAX_REPLY_CHARS
from chalicelib.responders.bot_definition import ENGLISH, FALLBACK_INTENT, locale_language
from chalicelib.responders.languages import CONTENT_DIR, fits, reply_texts

logger = logging.getLogger(__name__)

JOKE = "Joke"
FACT = "Fact"

# pyjokes' "neutral" category still jokes about death, self-harm, drink and insults; a
# public bot answering strangers leaves those out. Whole words, case-insensitive.
JOKE_BLOCKLIST = re.compile(
    r"\b(kill\w*|die[sd]?|dead|death|murder\w*|blood\w*|suicid\w*|stupid|idiot\w*|dumb"
    r"|pee\w*|sex\w*|girl\w*|wife|husband|women|men|beers?|drunk|alcohol|liquor|wine"
    r"|fbi|hate\w*|hell)\b",
    re.IGNORECASE,
)


# pyjokes' neutral English jokes (0.8.3) that the language detector reads as another
# language (a pun on a foreign-looking word, code, or too few words): a reply must be
# recognisably in the writer's language, as every other language's file is checked to be.
PYJOKES_NOT_READ_AS_ENGLISH = frozenset(
    {
        "Why do sin and tan work? Just cos.",
        "['hip', 'hip'] (hip hip array!)",
        "Computer programmers do it byte by byte.",
    }
)


class UnknownIntentError(InputError):
    """An intent this code does not fulfil: bot.json and the code disagree."""


def reply_for_intent(intent: str, rng: random.Random | None = None, language: str = ENGLISH) -> str:
    """The reply text for an intent, in `language`: a joke, a fact, or the help message."""
    rng = rng or random.Random()
    if intent in (JOKE, FACT):
        return rng.choice(_pool(intent, language) or _noted_english(intent, language))
    if intent == FALLBACK_INTENT:
        return reply_texts(language).help_message
    raise UnknownIntentError(f"no fulfilment for intent {intent!r}")


def _pool(intent: str, language: str) -> tuple[str, ...]:
    return joke_pool(language) if intent == JOKE else fact_pool(language)


@lru_cache(maxsize=32)
def _noted_english(intent: str, language: str) -> tuple[str, ...]:
    """For a language with no jokes (or facts) yet: the English ones that still fit a post
    after the note, in the writer's language, that they are English."""
    note = reply_texts(language).english_only
    return tuple(noted for entry in _pool(intent, ENGLISH) if fits(noted := f"{note} {entry}"))


def lex_fulfilment(event: dict[str, Any], rng: random.Random | None = None) -> dict[str, Any]:
    """Answer a Lex V2 code hook event with a Lex V2 response.

    FulfillmentCodeHook: close the intent as Fulfilled with one PlainText message.
    DialogCodeHook (only if someone enables it): Delegate, i.e. let Lex carry on.
    """
    session_state = event["sessionState"]
    intent = dict(session_state["intent"])
    source = event.get("invocationSource")
    logger.info(
        "lex %s for %s (session %s)", source, intent.get("name"), event.get("sessionId", "?")
    )
    if source == "DialogCodeHook":
        return {"sessionState": _next_state(session_state, intent, "Delegate")}
    if source != "FulfillmentCodeHook":
        raise ValueError(f"not a Lex V2 code hook event: invocationSource={source!r}")
    language = locale_language(str(event.get("bot", {}).get("localeId", "")) or ENGLISH)
    reply = reply_for_intent(intent["name"], rng, language)
    intent["state"] = "Fulfilled"
    return {
        "sessionState": _next_state(session_state, intent, "Close"),
        "messages": [{"contentType": "PlainText", "content": reply}],
    }


def _next_state(
    session_state: dict[str, Any], intent: dict[str, Any], action: str
) -> dict[str, Any]:
    # Lex replaces the session state with ours: keep the caller's session attributes.
    return {
        "sessionAttributes": session_state.get("sessionAttributes", {}),
        "dialogAction": {"type": action},
        "intent": intent,
    }


@lru_cache(maxsize=16)
def joke_pool(language: str = ENGLISH) -> tuple[str, ...]:
    """The jokes in `language` (empty when it has none). English: our bundled jokes plus
    pyjokes' neutral English ones that pass the blocklist; other languages: their file."""
    if language != ENGLISH:
        return _language_pool("jokes", language)
    import pyjokes  # lazy: only the fulfilment path needs it

    bundled = load_content("jokes.json")
    library = [
        joke
        for joke in pyjokes.get_jokes(language="en", category="neutral")
        if len(joke) <= MAX_REPLY_CHARS
        and not JOKE_BLOCKLIST.search(joke)
        and joke not in PYJOKES_NOT_READ_AS_ENGLISH
    ]
    logger.debug("joke pool: %d bundled + %d from pyjokes", len(bundled), len(library))
    return tuple(dict.fromkeys((*bundled, *library)))


@lru_cache(maxsize=16)
def fact_pool(language: str = ENGLISH) -> tuple[str, ...]:
    """The facts in `language` (empty when it has none)."""
    if language != ENGLISH:
        return _language_pool("facts", language)
    return load_content("facts.json")


def _language_pool(kind: str, language: str) -> tuple[str, ...]:
    name = f"{kind}.{language}.json"
    if not (CONTENT_DIR / name).is_file():
        logger.info("no %s in %r yet: English ones are told instead", kind, language)
        return ()
    return load_content(name)


@lru_cache(maxsize=32)
def load_content(name: str) -> tuple[str, ...]:
    """A bundled list of replies (content/NAME): {"language", "entries": [{"text", "source"}]},
    every entry with its source (the library and its set, or "written for Magpie")."""
    with (CONTENT_DIR / name).open(encoding="utf-8") as handle:
        raw = json.load(handle)
    entries = raw.get("entries") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{name} must be an object with a non-empty list of entries")
    for entry in entries:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("text"), str)
            and entry["text"].strip()
            and isinstance(entry.get("source"), str)
            and entry["source"].strip()
        ):
            raise ValueError(f"{name}: every entry needs a non-empty text and source: {entry!r}")
    expected = name.split(".")[1] if name.count(".") == 2 else ENGLISH
    if raw.get("language") != expected:
        raise ValueError(f"{name} says its language is {raw.get('language')!r}, not {expected!r}")
    return tuple(dict.fromkeys(entry["text"].strip() for entry in entries))
