"""The webhook's two operations, free of Chalice: answer a CRC, accept a signed delivery.

A delivery is acknowledged (200) only once every event is durably on the bus; any failure
to publish raises, and the handler answers 5xx so X retries. No media download or ML here.
A signed delivery is refused only when it is not JSON (NaN and Infinity included), over the
limits (body size, nesting, MAX_ITEMS_PER_DELIVERY items) or carries a message time that
cannot be placed; everything else reaches the bus. An item whose event would pass
EventBridge's entry limit is published as a truncated stand-in, and its message (if any)
skipped with a note, so the rest of the delivery is still published and acknowledged.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from chalicelib.bus.envelope import MAX_ENTRY_BYTES, entry_bytes, serialise_detail
from chalicelib.errors import InputError
from chalicelib.events import ContractError, MessageReceived, OutgoingEvent
from chalicelib.ingress import signature
from chalicelib.ingress.activity import (
    TooManyItems,
    Translation,
    UnsupportedPayload,
    translate,
)
from chalicelib.ingress.text import may_hold_surrogates, repair_all_surrogates
from chalicelib.ingress.timestamps import InvalidTimestamp
from chalicelib.ports import EventBus, IdempotencyStore

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64
# EventBridge's limit per entry, held on both backends: an event over it would fail every
# PutEvents (503, retried by X forever) on AWS. Every event is measured as it will be
# serialised, since re-serialising can grow an item several times (1e15 is written
# 1000000000000000.0, an emoji as a 12-byte surrogate pair).
MAX_EVENT_BYTES = MAX_ENTRY_BYTES
# How much of an oversized item its stand-in keeps: the serialised item is ASCII, and
# quoting it again at most doubles it, so the stand-in stays far under the limit.
TRUNCATED_EXCERPT_CHARS = 16 * 1024
# The scalar fields of an item a stand-in keeps, so it can still be found by id and time.
_STAND_IN_FIELDS = ("id", "id_str", "event_type", "created_at", "created_timestamp")
_STAND_IN_FIELD_CHARS = 64


class PayloadTooLarge(InputError):
    pass


class InvalidPayload(InputError):
    pass


class EmptyMessageId(InputError):
    """A message without an id: its idempotency key would collide with every other one."""


@dataclass(frozen=True)
class Accepted:
    events: int
    messages: int
    duplicates: int
    skipped: int

    def body(self) -> dict[str, Any]:
        return {
            "status": "accepted",
            "events": self.events,
            "messages": self.messages,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
        }


def answer_crc(secret: str, token: str | None) -> dict[str, str]:
    return signature.crc_response(secret, token)


def accept_delivery(
    raw_body: bytes,
    signature_header: str | None,
    *,
    secret: str,
    bot_user_id: str,
    bus: EventBus,
    idempotency: IdempotencyStore,
) -> Accepted:
    """Verify, parse, fan out and publish one delivery. Raises on anything we cannot accept:
    InvalidSignature (401), PayloadTooLarge (413), InvalidPayload (400), PublishError (5xx)."""
    if len(raw_body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body is {len(raw_body)} bytes, limit {MAX_BODY_BYTES}")
    signature.verify(secret, raw_body, signature_header)
    payload = _parse(raw_body)
    try:
        translation = translate(payload, bot_user_id)
    except TooManyItems as exc:
        logger.warning("refused delivery (413): %s", exc)
        raise PayloadTooLarge(str(exc)) from exc
    except (UnsupportedPayload, InvalidTimestamp) as exc:
        raise InvalidPayload(str(exc)) from exc
    _check_contract(translation.messages)
    translation.raw = [_fit_raw(event, translation.notes) for event in translation.raw]
    translation.messages = _fitting_messages(translation)
    for note in translation.notes:
        logger.info("delivery note: %s", note)
    for item_id, reason in translation.skipped:
        logger.info("not answering %s: %s", item_id, reason)
    bus.put(translation.raw)
    duplicates = sum(0 if _publish_once(m, bus, idempotency) else 1 for m in translation.messages)
    return Accepted(
        events=len(translation.raw),
        messages=len(translation.messages) - duplicates,
        duplicates=duplicates,
        skipped=len(translation.skipped),
    )


def _fit_raw(event: OutgoingEvent, notes: list[str]) -> OutgoingEvent:
    """The raw event itself, or a stand-in under the limit when it would pass it."""
    serialised = serialise_detail(event.detail)
    size = entry_bytes(event, serialised)
    if size <= MAX_EVENT_BYTES:
        return event
    notes.append(
        f"one {event.detail_type} item is {size} bytes, limit {MAX_EVENT_BYTES}: kept truncated"
    )
    logger.warning("truncated one %s item of %d bytes", event.detail_type, size)
    stand_in: dict[str, Any] = {
        key: event.detail[key]
        for key in _STAND_IN_FIELDS
        if isinstance(event.detail.get(key), str | int)
        and len(str(event.detail[key])) <= _STAND_IN_FIELD_CHARS
    }
    stand_in["magpie_truncated"] = {
        "bytes": size,
        "limit": MAX_EVENT_BYTES,
        "sha256": hashlib.sha256(serialised.encode()).hexdigest(),
        "excerpt": serialised[:TRUNCATED_EXCERPT_CHARS],
    }
    return OutgoingEvent(event.source, event.detail_type, stand_in, event.time)


def _fitting_messages(translation: Translation) -> list[MessageReceived]:
    """The messages whose MESSAGE_RECEIVED fits; the others are skipped with the reason."""
    fitting = []
    for message in translation.messages:
        size = entry_bytes(message.to_event())
        if size <= MAX_EVENT_BYTES:
            fitting.append(message)
        else:
            reason = f"its MESSAGE_RECEIVED is {size} bytes, limit {MAX_EVENT_BYTES}"
            translation.skipped.append((message.MessageId, reason))
    return fitting


def _check_contract(messages: list[MessageReceived]) -> None:
    """A signed delivery whose fields have the wrong types (say, a numeric text) would be
    acknowledged and then fail every consumer; refuse it here, before anything is published."""
    for message in messages:
        try:
            MessageReceived.from_detail(message.to_detail())
        except ContractError as exc:
            raise InvalidPayload(f"message {message.MessageId!r} does not fit: {exc}") from exc


def _publish_once(message: MessageReceived, bus: EventBus, idempotency: IdempotencyStore) -> bool:
    """Publish MESSAGE_RECEIVED once per message id; False when it was a duplicate."""
    published_now = []

    def publish() -> str:
        bus.put([message.to_event()])
        published_now.append(True)
        return "published"

    # IdempotencyInProgress propagates (503): the attempt holding the key may have crashed
    # before publishing, so acknowledging this copy could lose the message.
    idempotency.once("message-received", message_key(message), publish)
    if not published_now:
        logger.info("duplicate delivery of %s %s", message.Kind, message.MessageId)
    return bool(published_now)


def message_key(message: MessageReceived) -> str:
    """The idempotency key of one message; never built from an empty id."""
    if not message.MessageId.strip():
        raise EmptyMessageId(f"{message.Kind} message without an id")
    return f"{message.Kind}:{message.MessageId}"


def _parse(raw_body: bytes) -> Any:
    try:
        payload = json.loads(raw_body, parse_constant=_refuse_constant, parse_float=_finite)
    except InvalidPayload:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, 4300+ digit ints
        raise InvalidPayload("body is not valid JSON") from exc
    if _depth(payload) > MAX_JSON_DEPTH:
        raise InvalidPayload(f"JSON nested deeper than {MAX_JSON_DEPTH}")
    # A lone surrogate would be acknowledged here and fail every UTF-8 writer later.
    return repair_all_surrogates(payload) if may_hold_surrogates(raw_body) else payload


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are not JSON: accepted, they would be written to the lake as is."""
    raise InvalidPayload(f"body holds {name}, which JSON does not allow")


def _finite(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise InvalidPayload(f"body holds a number too large for a float ({text[:20]})")
    return number


def _depth(value: Any) -> int:
    """Nesting depth, iteratively (deep input must not blow the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            return depth
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        stack.extend((child, depth + 1) for child in children)
    return deepest
