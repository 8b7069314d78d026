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

Languages (docs/LANGUAGES.md): `localeIds` holds a Lex locale per language the bot speaks.
The intents' own `sampleUtterances` are English, for the English locales; every other
locale has its utterances in `utterancesByLocale` (locale -> intent -> utterances), so Lex
and the local matcher each build one model per locale from this one file. The English
texts here (`helpMessage`, `replies`, `mediaReasons`, `people`, `separators`) are the
source; each other language's are in `content/texts.<language>.json`, with the same keys
and the same `{placeholders}` (`parse_reply_texts` checks both).
"""

from __future__ import annotations

import json
import logging
import re
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
ENGLISH = "en"
# Every key of `people` (the "I recognised ..." reply) and of `separators`.
PEOPLE_KEYS = ("recognised", "more", "nobody", "count")
SEPARATOR_KEYS = ("names", "reasons")
UNSPOKEN_KEYS = ("named", "unnamed", "short")
_PLACEHOLDER = re.compile(r"{(\w*)}")


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
class ReplyTexts:
    """Every fixed sentence the responders send, in one language."""

    language: str
    help_message: str
    replies: dict[str, str]
    media_reasons: dict[str, str]
    people: dict[str, str]
    separators: dict[str, str]
    # Said before an English joke or fact when this language has none of its own yet.
    english_only: str = ""

    def media_reason(self, reason: str) -> str:
        """Why a photo could not be opened, in these words (a rejection's Reason)."""
        return self.media_reasons.get(reason, self.media_reasons[DEFAULT_MEDIA_REASON])


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
    people: dict[str, str] = field(default_factory=dict)
    separators: dict[str, str] = field(default_factory=dict)
    # Locale -> intent -> utterances, for the locales whose utterances are not the intents'.
    utterances_by_locale: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    # The English clause for a language the bot does not speak, and those languages' names.
    unspoken: dict[str, str] = field(default_factory=dict)
    language_names: dict[str, str] = field(default_factory=dict)

    def media_reason(self, reason: str) -> str:
        """Why a photo could not be opened, in the bot's words (a rejection's Reason)."""
        return self.media_reasons.get(reason, self.media_reasons[DEFAULT_MEDIA_REASON])

    @property
    def texts(self) -> ReplyTexts:
        """The English texts, the source every translation follows."""
        return ReplyTexts(
            language=ENGLISH,
            help_message=self.help_message,
            replies=self.replies,
            media_reasons=self.media_reasons,
            people=self.people,
            separators=self.separators,
        )

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages the bot speaks, one per language among its locales, in their order."""
        return tuple(dict.fromkeys(locale_language(locale) for locale in self.locales))

    def locale_for(self, language: str) -> str | None:
        """The first locale of `language` ("fr" -> "fr_FR"), or None if the bot lacks it."""
        return next((loc for loc in self.locales if locale_language(loc) == language), None)

    def utterances(self, intent: IntentDefinition, locale: str) -> tuple[str, ...]:
        """The intent's sample utterances in `locale`."""
        if locale in self.utterances_by_locale:
            return self.utterances_by_locale[locale].get(intent.name, ())
        return intent.utterances

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
            people=_texts(raw["people"]),
            separators={str(k): str(v) for k, v in raw["separators"].items()},
            utterances_by_locale=_utterances_by_locale(raw.get("utterancesByLocale", {})),
            unspoken=_texts(raw["unspokenLanguage"]),
            language_names=_texts(raw.get("languageNames", {})),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise BotDefinitionError(f"bot definition is missing or mistypes {exc}") from exc
    _validate(definition)
    _warn_of_links(raw)
    return definition


def locale_language(locale: str) -> str:
    """The language of a Lex locale id: "pt_BR" -> "pt"."""
    return locale.split("_")[0].lower()


def intents_for_locale(raw: dict[str, Any], locale: str) -> list[dict[str, Any]]:
    """bot.json's intents as one Lex locale has them: a locale in `utterancesByLocale` gets
    its own utterances, the English locales the intents' own. Keys stay CfnBot's."""
    own = raw.get("utterancesByLocale", {}).get(locale)
    if own is None:
        return [dict(intent) for intent in raw["intents"]]
    intents = []
    for intent in raw["intents"]:
        localised = {k: v for k, v in intent.items() if k != "sampleUtterances"}
        if intent.get("sampleUtterances"):
            localised["sampleUtterances"] = [{"utterance": u} for u in own[intent["name"]]]
        intents.append(localised)
    return intents


def parse_reply_texts(raw: dict[str, Any], english: BotDefinition) -> ReplyTexts:
    """One language's texts (a content/texts.<language>.json), checked against the English:
    the same keys, the same {placeholders} in each, nothing empty."""
    try:
        texts = ReplyTexts(
            language=str(raw["language"]),
            help_message=str(raw["helpMessage"]).strip(),
            replies=_texts(raw["replies"]),
            media_reasons=_texts(raw["mediaReasons"]),
            people=_texts(raw["people"]),
            separators={str(k): str(v) for k, v in raw["separators"].items()},
            english_only=str(raw["englishOnly"]).strip(),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise BotDefinitionError(f"texts are missing or mistype {exc}") from exc
    problems = [
        *_translation_problems("helpMessage", {"": english.help_message}, {"": texts.help_message}),
        *_translation_problems("replies", english.replies, texts.replies),
        *_translation_problems("mediaReasons", english.media_reasons, texts.media_reasons),
        *_translation_problems("people", english.people, texts.people),
        *_translation_problems("separators", english.separators, texts.separators),
    ]
    if not texts.english_only:
        problems.append("englishOnly is empty")
    if problems:
        raise BotDefinitionError(f"texts for {texts.language!r}: " + "; ".join(problems))
    return texts


def _translation_problems(
    where: str, source: dict[str, str], translation: dict[str, str]
) -> list[str]:
    problems = []
    if set(source) != set(translation):
        problems.append(
            f"{where} keys differ from the English: {sorted(set(source) ^ set(translation))}"
        )
    for key in set(source) & set(translation):
        if not translation[key]:
            problems.append(f"{where}.{key} is empty")
        elif set(_PLACEHOLDER.findall(source[key])) != set(_PLACEHOLDER.findall(translation[key])):
            problems.append(f"{where}.{key} changes the placeholders")
    return problems


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


def _utterances_by_locale(raw: dict[str, Any]) -> dict[str, dict[str, tuple[str, ...]]]:
    return {
        str(locale): {str(name): tuple(str(u).strip() for u in said) for name, said in by.items()}
        for locale, by in raw.items()
    }


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
    for where, texts, keys in (
        ("replies", definition.replies, REPLY_KEYS),
        ("people", definition.people, PEOPLE_KEYS),
        ("separators", definition.separators, SEPARATOR_KEYS),
        ("unspokenLanguage", definition.unspoken, UNSPOKEN_KEYS),
    ):
        missing = [k for k in keys if not texts.get(k)]
        if missing:
            problems.append(f"{where} lacks {', '.join(missing)}")
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
    if len(set(definition.locales)) != len(definition.locales):
        problems.append("localeIds repeat")
    problems.extend(_locale_problems(definition))
    for locale in definition.locales:
        problems.extend(_shared_utterances(definition, locale))
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


def _locale_problems(definition: BotDefinition) -> list[str]:
    """Each non-English locale has its own utterances for every intent, and nothing else
    does: an English utterance in a French model would teach it nothing but noise."""
    problems = []
    for locale in set(definition.utterances_by_locale) - set(definition.locales):
        problems.append(f"utterancesByLocale has {locale}, which is not in localeIds")
    for locale in definition.locales:
        if locale_language(locale) == ENGLISH:
            continue
        own = definition.utterances_by_locale.get(locale)
        if own is None:
            problems.append(f"{locale}: no utterancesByLocale")
            continue
        names = {i.name for i in definition.matchable_intents}
        if set(own) != names:
            problems.append(f"{locale}: utterances for {sorted(own)}, intents are {sorted(names)}")
        for intent in definition.matchable_intents:
            utterances = definition.utterances(intent, locale)
            if not utterances or not all(utterances):
                problems.append(f"{locale} {intent.name}: needs non-empty utterances")
            lowered = [u.lower() for u in utterances]
            if len(set(lowered)) != len(lowered):
                problems.append(f"{locale} {intent.name}: repeated utterances")
    return problems


def _shared_utterances(definition: BotDefinition, locale: str) -> list[str]:
    # One utterance under two intents leaves both Lex and the local matcher guessing.
    owner: dict[str, str] = {}
    problems = []
    for intent in definition.matchable_intents:
        for utterance in definition.utterances(intent, locale):
            key = utterance.lower()
            if key in owner and owner[key] != intent.name:
                problems.append(f"{utterance!r} is under both {owner[key]} and {intent.name}")
            owner.setdefault(key, intent.name)
    return problems
