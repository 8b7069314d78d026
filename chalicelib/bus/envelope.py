"""EventBridge envelopes, as EventBridge delivers them to targets and Firehose to the lake."""

from __future__ import annotations

import uuid
from typing import Any

from chalicelib.events import OutgoingEvent


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
