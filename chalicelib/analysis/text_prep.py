"""The text every analyser reads: a message's text without its mentions and links.

Shared by the analysis step (which cleans once, for both backends) and the adapters, so it
lives in neither.
"""

from __future__ import annotations

import re

_URL = re.compile(r"(?:https?://|\bt\.co/)\S*", re.IGNORECASE)
# An X handle: "@" + letters, digits, underscore; not part of an e-mail address.
_MENTION = re.compile(r"(?<![\w@])@\w+")


def strip_for_analysis(text: str) -> str:
    """Remove @mentions and links (http(s):// and bare t.co/...), collapse whitespace.

    Mentions and links are noise to every model: the bot's own handle would otherwise be an
    entity of every message, and a t.co slug reads as a foreign word to language detection."""
    without_urls = _URL.sub(" ", text)
    without_mentions = _MENTION.sub(" ", without_urls)
    return " ".join(without_mentions.split())
