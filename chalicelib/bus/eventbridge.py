"""EventBridge adapter of the bus port: PutEvents in batches of 10, failed entries retried."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from chalicelib.bus import PublishError
from chalicelib.bus.envelope import MAX_ENTRY_BYTES, entry_bytes, serialise_detail
from chalicelib.events import OutgoingEvent

logger = logging.getLogger(__name__)

MAX_BATCH = 10  # PutEvents' limit per call


class EventBridgeBus:
    def __init__(
        self,
        client: Any,
        bus_name: str,
        *,
        attempts: int = 4,
        base_delay: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._bus_name = bus_name
        self._attempts = attempts
        self._base_delay = base_delay
        self._sleep = sleep

    def put(self, events: Sequence[OutgoingEvent]) -> None:
        entries = [self._entry(e) for e in events]
        for start in range(0, len(entries), MAX_BATCH):
            self._put_batch(entries[start : start + MAX_BATCH])

    def _entry(self, event: OutgoingEvent) -> dict[str, Any]:
        entry = {
            "Source": event.source,
            "DetailType": event.detail_type,
            "Detail": serialise_detail(event.detail),
            "EventBusName": self._bus_name,
        }
        size = entry_bytes(event, entry["Detail"])
        if size > MAX_ENTRY_BYTES:
            raise PublishError(
                f"{event.detail_type} event is {size} bytes, over EventBridge's 256 KiB"
            )
        return entry

    def _put_batch(self, entries: list[dict[str, Any]]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        pending = entries
        for attempt in range(self._attempts):
            try:
                response = self._client.put_events(Entries=pending)
            except (BotoCoreError, ClientError) as exc:
                raise PublishError(f"PutEvents failed: {exc}") from exc
            if not response.get("FailedEntryCount"):
                return
            # Entries in the response line up with the request; retry only the failed ones.
            failed = [
                (entry, result)
                for entry, result in zip(pending, response["Entries"], strict=True)
                if result.get("ErrorCode")
            ]
            logger.warning(
                "EventBridge rejected %d of %d entries (attempt %d): %s",
                len(failed),
                len(pending),
                attempt + 1,
                sorted({r["ErrorCode"] for _, r in failed}),
            )
            pending = [entry for entry, _ in failed]
            self._sleep(self._base_delay * (2**attempt))
        raise PublishError(
            f"{len(pending)} events still rejected by EventBridge after {self._attempts} attempts"
        )
