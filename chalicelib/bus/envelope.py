"""EventBridge envelopes, as EventBridge delivers them to targets and Firehose to the lake,
and an entry's size as PutEvents counts it (both backends refuse what EventBridge would)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from chalicelib.events import OutgoingEvent

MAX_ENTRY_BYTES = 256 * 1024


def serialise_detail(detail: dict[str, Any]) -> str:
    """The Detail string PutEvents is given (and the size check measures)."""
    return json.dumps(detail, separators=(",", ":"))


def entry_bytes(event: OutgoingEvent, detail: str | None = None) -> int:
    """An entry's size as EventBridge counts it: the UTF-8 bytes of its Source, DetailType
    and Detail (no Time or Resources are sent)."""
    detail = serialise_detail(event.detail) if detail is None else detail
    return len(detail.encode()) + len(event.source.encode()) + len(event.detail_type.encode())


def make_envelope(event: OutgoingEvent, *, account: str, region: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": event.detail_type,
        "source": event.source,
        "account": account,
        "time": event.time,
        "region": region,
        "resources": [],
        "detail": event.detail,
    }
