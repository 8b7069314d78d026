"""Fulfilment of the bot's intents: the Lex V2 code hook and the replies themselves.

On AWS, Lex calls `lex_fulfilment` (the core app's Lambda) for every intent, the fallback
included; locally, `intents.LocalConversation` calls it with the same event shape. So the
reply for an intent never depends on the backend.

Replies come only from bundled, vetted content (no network at run time): jokes from
pyjokes' "neutral" English set, minus a documented blocklist, plus our own
`content/jokes.json`; facts from `content/facts.json`; the fallback gets the bot's help.
"""

from __future__ import annotations

import json
import logging
import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from chalicelib.errors import InputError
from chalicelib.responders.bot_definition import FALLBACK_INTENT, load_bot_definition

logger = logging.getLogger(__name__)

CONTENT_DIR = Path(__file__).with_name("content")
JOKE = "Joke"
FACT = "Fact"

# A reply is prefixed with "@handle " (up to 16 chars) and must fit a 280-character post;
# 240 leaves room for that and for a little framing.
MAX_REPLY_CHARS = 240

# pyjokes' "neutral" category still jokes about death, self-harm, drink and insults; a
# public bot answering strangers leaves those out. Whole words, case-insensitive.
JOKE_BLOCKLIST = re.compile(
    r"\b(kill\w*|die[sd]?|dead|death|murder\w*|blood\w*|suicid\w*|stupid|idiot\w*|dumb"
    r"|pee\w*|sex\w*|girl\w*|wife|husband|women|men|beers?|drunk|alcohol|liquor|wine"
    r"|fbi|hate\w*|hell)\b",
    re.IGNORECASE,
)


class UnknownIntentError(InputError):
    """An intent this code does not fulfil: bot.json and the code disagree."""


def reply_for_intent(intent: str, rng: random.Random | None = None) -> str:
    """The reply text for an intent: a joke, a fact, or the help message for the fallback."""
    rng = rng or random.Random()
    if intent == JOKE:
        return rng.choice(joke_pool())
    if intent == FACT:
        return rng.choice(load_content("facts.json"))
    if intent == FALLBACK_INTENT:
        return load_bot_definition().help_message
    raise UnknownIntentError(f"no fulfilment for intent {intent!r}")


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
    reply = reply_for_intent(intent["name"], rng)
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


@lru_cache(maxsize=1)
def joke_pool() -> tuple[str, ...]:
    """Our bundled jokes plus pyjokes' neutral English ones that pass the blocklist."""
    import pyjokes  # lazy: only the fulfilment path needs it

    bundled = load_content("jokes.json")
    library = [
        joke
        for joke in pyjokes.get_jokes(language="en", category="neutral")
        if len(joke) <= MAX_REPLY_CHARS and not JOKE_BLOCKLIST.search(joke)
    ]
    logger.debug("joke pool: %d bundled + %d from pyjokes", len(bundled), len(library))
    return tuple(dict.fromkeys((*bundled, *library)))


@lru_cache(maxsize=4)
def load_content(name: str) -> tuple[str, ...]:
    """A bundled list of replies (content/NAME): a JSON array of strings."""
    with (CONTENT_DIR / name).open(encoding="utf-8") as handle:
        items = json.load(handle)
    if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
        raise ValueError(f"{name} must be a JSON array of non-empty strings")
    return tuple(i.strip() for i in items)
