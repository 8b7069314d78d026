"""HTTP outcomes of the webhook: status code and JSON body for each operation.

The Chalice handler stays thin: it passes the query, headers and raw body here and wraps
the answer in a Response. Errors become clear 4xx/5xx answers, never a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.bus import PublishError
from chalicelib.config import ConfigError
from chalicelib.ingress import signature, webhook
from chalicelib.ports import IdempotencyInProgress, IdempotencyUnavailable

logger = logging.getLogger(__name__)

Answer = tuple[int, dict[str, Any]]


def crc_answer(token: str | None) -> Answer:
    from chalicelib.secrets import consumer_secret

    try:
        return 200, webhook.answer_crc(consumer_secret(), token)
    except signature.InvalidCrcToken as exc:
        return 400, {"error": str(exc)}


def delivery_answer(raw_body: bytes, signature_header: str | None) -> Answer:
    from chalicelib import backend
    from chalicelib.config import settings
    from chalicelib.secrets import consumer_secret

    try:
        accepted = webhook.accept_delivery(
            raw_body,
            signature_header,
            secret=consumer_secret(),
            bot_user_id=settings().bot_user_id,
            bus=backend.event_bus(),
            idempotency=backend.ingress_idempotency(),
        )
    except webhook.PayloadTooLarge as exc:
        return 413, {"error": str(exc)}
    except signature.InvalidSignature as exc:
        logger.warning("rejected delivery: %s", exc)
        return 401, {"error": "invalid signature"}
    except webhook.InvalidPayload as exc:
        return 400, {"error": str(exc)}
    except (PublishError, ConfigError, IdempotencyInProgress, IdempotencyUnavailable) as exc:
        # Not acknowledged: X retries the delivery later.
        logger.error("could not accept delivery: %s", exc)
        return 503, {"error": "temporarily unable to accept the delivery"}
    return 200, accepted.body()
