"""The conversational bot's definition, read from `bot.json`: one file for both backends.

On AWS the infrastructure builds the Lex V2 bot (CfnBot) from it: each locale in
`localeIds` gets `nluConfidenceThreshold` and every intent, whose keys already follow
CfnBot's IntentProperty (`name`, `sampleUtterances`, `fulfillmentCodeHook`,
`parentIntentSignature`). Locally, `intents.LocalIntentMatcher` is built from the same
utterances, so both backends recognise the same things.

`helpMessage`, `replies` and `mediaReasons` are not Lex fields: they are every other
sentence the bot says, kept here so all its wording is in one file whichever backend
answers. The fulfilment code hook answers FallbackIntent with `helpMessage`
(`fulfilment.reply_for_intent`), so no closing response is needed in Lex; the responders
answer a message that raised a negative alert, or whose photos could not be opened, from
`replies` (`handlers`), before any intent is asked for.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from chalicelib.errors import ConfigurationError

logger = logging.getLogger(__name__)

BOT_FILE = Path(__file__).with_name("bot.json")
FALLBACK_INTENT = "FallbackIntent"
FALLBACK_SIGNATURE = "AMAZON.FallbackIntent"
# Every key of `replies` the responders use; `{...}` are filled in by `handlers`.
REPLY_KEYS = (
    "negative",
    "unreadablePhotos",
    "partlyUnreadablePhotos",
    "photosOne",
    "photosAll",
    "photosSome",
)
DEFAULT_MEDIA_REASON = "default"


class BotDefinitionError(ConfigurationError, ValueError):
    """bot.json does not describe a bot Lex (or the local matcher) could build."""


@dataclass(frozen=True)
class IntentDefinition:
    name: str
    utterances: tuple[str, ...]
    description: str = ""
    parent_signature: str | None = None
    fulfillment_code_hook: bool = True

    @property
    def is_fallback(self) -> bool:
        return self.parent_signature == FALLBACK_SIGNATURE


@dataclass(frozen=True)
class BotDefinition:
    name: str
    locales: tuple[str, ...]
    nlu_confidence_threshold: float
    intents: tuple[IntentDefinition, ...]
    help_message: str
    replies: dict[str, str] = field(default_factory=dict)
    media_reasons: dict[str, str] = field(default_factory=dict)
    description: str = ""
    idle_session_ttl_seconds: int = 300
    child_directed: bool = False

    def media_reason(self, reason: str) -> str:
        """Why a photo could not be opened, in the bot's words (a rejection's Reason)."""
        return self.media_reasons.get(reason, self.media_reasons[DEFAULT_MEDIA_REASON])

    def intent(self, name: str) -> IntentDefinition:
        for intent in self.intents:
            if intent.name == name:
                return intent
        raise KeyError(name)

    @property
    def matchable_intents(self) -> tuple[IntentDefinition, ...]:
        """The intents recognised from utterances (all but the fallback)."""
        return tuple(i for i in self.intents if not i.is_fallback)


@lru_cache(maxsize=1)
def load_bot_definition() -> BotDefinition:
    """Read and validate the bundled bot.json (cached: the file ships with the code)."""
    with BOT_FILE.open(encoding="utf-8") as handle:
        raw = json.load(handle)
    return parse_bot_definition(raw)


def parse_bot_definition(raw: dict[str, Any]) -> BotDefinition:
    """Build a BotDefinition from bot.json's structure, raising BotDefinitionError if invalid."""
    try:
        definition = BotDefinition(
            name=str(raw["name"]),
            locales=tuple(raw["localeIds"]),
            nlu_confidence_threshold=float(raw["nluConfidenceThreshold"]),
            intents=tuple(_parse_intent(i) for i in raw["intents"]),
            help_message=str(raw["helpMessage"]).strip(),
            replies=_texts(raw["replies"]),
            media_reasons=_texts(raw["mediaReasons"]),
            description=str(raw.get("description", "")),
            idle_session_ttl_seconds=int(raw.get("idleSessionTtlInSeconds", 300)),
            child_directed=bool(raw.get("childDirected", False)),
        )
    except (KeyError, TypeError) as exc:
        raise BotDefinitionError(f"bot definition is missing or mistypes {exc}") from exc
    _validate(definition)
    _warn_of_links(raw)
    return definition


def _warn_of_links(raw: dict[str, Any]) -> None:
    """Say so, with the price, when a text the bot can send holds a URL: X bills such a post
    $0.200, 20 times a summoned reply. Every string but the intents' (utterances are heard,
    not said), so wording added in any shape or language is checked too."""
    from chalicelib.x_cost import holds_url, x_price_table

    writes = x_price_table()["writes"]
    for where, text in _strings({k: v for k, v in raw.items() if k != "intents"}, "bot.json"):
        if holds_url(text):
            logger.warning(
                "%s holds a URL (%r): X bills a post with one $%.3f, a summoned reply $%.3f",
                where,
                text[:120],
                writes["post_with_url"],
                writes["post_summoned"],
            )


def _strings(value: Any, where: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in _strings(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [s for i, item in enumerate(value) for s in _strings(item, f"{where}[{i}]")]
    return []


def _texts(raw: dict[str, Any]) -> dict[str, str]:
    return {str(key): str(value).strip() for key, value in raw.items()}


def _parse_intent(raw: dict[str, Any]) -> IntentDefinition:
    return IntentDefinition(
        name=str(raw["name"]),
        utterances=tuple(str(u["utterance"]).strip() for u in raw.get("sampleUtterances", [])),
        description=str(raw.get("description", "")),
        parent_signature=raw.get("parentIntentSignature"),
        fulfillment_code_hook=bool(raw.get("fulfillmentCodeHook", {}).get("enabled", False)),
    )


def _validate(definition: BotDefinition) -> None:
    problems: list[str] = []
    if not definition.name:
        problems.append("the bot has no name")
    if not definition.locales:
        problems.append("no locales")
    if not 0 < definition.nlu_confidence_threshold <= 1:
        problems.append("nluConfidenceThreshold must be in (0, 1]")
    if not definition.help_message:
        problems.append("helpMessage is empty")
    missing = [k for k in REPLY_KEYS if not definition.replies.get(k)]
    if missing:
        problems.append(f"replies lacks {', '.join(missing)}")
    if not definition.media_reasons.get(DEFAULT_MEDIA_REASON):
        problems.append(f"mediaReasons lacks {DEFAULT_MEDIA_REASON!r}")
    names = [i.name for i in definition.intents]
    if len(set(names)) != len(names):
        problems.append("intent names repeat")
    fallbacks = [i for i in definition.intents if i.is_fallback]
    if [i.name for i in fallbacks] != [FALLBACK_INTENT]:
        problems.append(f"exactly one {FALLBACK_SIGNATURE} intent named {FALLBACK_INTENT}")
    for intent in definition.intents:
        problems.extend(_intent_problems(intent))
    if not definition.matchable_intents:
        problems.append("no intent besides the fallback")
    problems.extend(_shared_utterances(definition))
    if problems:
        raise BotDefinitionError("invalid bot definition: " + "; ".join(problems))


def _intent_problems(intent: IntentDefinition) -> list[str]:
    # Lex refuses utterances on the built-in fallback and needs them on every other intent.
    if intent.is_fallback:
        return [f"{intent.name}: the fallback takes no utterances"] if intent.utterances else []
    problems = []
    if not intent.utterances or not all(intent.utterances):
        problems.append(f"{intent.name}: needs non-empty sampleUtterances")
    lowered = [u.lower() for u in intent.utterances]
    if len(set(lowered)) != len(lowered):
        problems.append(f"{intent.name}: repeated utterances")
    return problems


def _shared_utterances(definition: BotDefinition) -> list[str]:
    # One utterance under two intents leaves both Lex and the local matcher guessing.
    owner: dict[str, str] = {}
    problems = []
    for intent in definition.matchable_intents:
        for utterance in intent.utterances:
            key = utterance.lower()
            if key in owner and owner[key] != intent.name:
                problems.append(f"{utterance!r} is under both {owner[key]} and {intent.name}")
            owner.setdefault(key, intent.name)
    return problems
