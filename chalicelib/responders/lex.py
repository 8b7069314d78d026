"""The AWS backend of the Conversation port: Amazon Lex V2 `RecognizeText`.

Lex picks the intent and calls our fulfilment code hook (`fulfilment.lex_fulfilment`), whose
reply comes back in `messages`. The client is injected (a boto3 "lexv2-runtime" client);
`LexConversation.create` builds one, importing boto3 only then.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from chalicelib.responders.bot_definition import FALLBACK_INTENT

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 1024  # RecognizeText's limit on `text`
_SESSION_ID_BAD = re.compile(r"[^0-9A-Za-z._:-]")


class LexConversation:
    """Ask a deployed Lex V2 bot alias; returns {"Intent", "Confidence", "Message"}."""

    def __init__(
        self, client: Any, bot_id: str, bot_alias_id: str, locale_id: str = "en_GB"
    ) -> None:
        self.client = client
        self.bot_id = bot_id
        self.bot_alias_id = bot_alias_id
        self.locale_id = locale_id

    @classmethod
    def create(
        cls, bot_id: str, bot_alias_id: str, locale_id: str = "en_GB", region: str | None = None
    ) -> LexConversation:
        """With a fresh boto3 client (boto3 is imported here, never at module import)."""
        import boto3

        client = boto3.client("lexv2-runtime", region_name=region)
        return cls(client, bot_id, bot_alias_id, locale_id)

    def ask(self, text: str, session_id: str, locale: str | None = None) -> dict[str, Any]:
        """One turn with the bot in `locale` (None: this adapter's own). Empty text is
        refused, as RecognizeText would refuse it."""
        if not text.strip():
            raise ValueError("cannot ask the bot about empty text")
        if len(text) > MAX_TEXT_CHARS:
            logger.info("text of %d chars cut to Lex's %d", len(text), MAX_TEXT_CHARS)
            text = text[:MAX_TEXT_CHARS]
        response = self.client.recognize_text(
            botId=self.bot_id,
            botAliasId=self.bot_alias_id,
            localeId=locale or self.locale_id,
            sessionId=lex_session_id(session_id),
            text=text,
        )
        return parse_recognize_text(response)


def lex_session_id(session_id: str) -> str:
    """Fit any id (e.g. an X handle or user id) to Lex's sessionId: [0-9a-zA-Z._:-]{2,100}."""
    cleaned = _SESSION_ID_BAD.sub("_", session_id)[:100]
    return cleaned.ljust(2, "_")


def parse_recognize_text(response: dict[str, Any]) -> dict[str, Any]:
    """{"Intent", "Confidence", "Message"} from a RecognizeText response.

    Confidence is the chosen intent's nluConfidence.score. Lex gives the fallback none, so for
    FallbackIntent it is the best score any other intent reached (which fell below the
    threshold): the same meaning `LocalIntentMatcher` gives it. Message joins the messages
    (usually one); it is "" when Lex had nothing to say, and the caller then stays silent.
    """
    intent = response.get("sessionState", {}).get("intent", {}).get("name", FALLBACK_INTENT)
    scores = {
        i["intent"]["name"]: float(i["nluConfidence"]["score"])
        for i in response.get("interpretations", [])
        if "nluConfidence" in i and "intent" in i
    }
    if intent in scores:
        confidence = scores[intent]
    else:
        confidence = max((s for n, s in scores.items() if n != FALLBACK_INTENT), default=0.0)
    texts = [
        m["content"]
        for m in response.get("messages", [])
        if m.get("contentType") == "PlainText" and m.get("content")
    ]
    if not texts:
        logger.warning("Lex returned no PlainText message for intent %s", intent)
    return {"Intent": intent, "Confidence": confidence, "Message": " ".join(texts)}
