"""The event bus port's publishing side: one helper every producer calls.

It lives outside `chalicelib.bus` because it asks `chalicelib.backend` for the bus, and
the backend imports the bus adapters in that package: the helper inside it made a loop.
"""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib import backend
from chalicelib.events import OutgoingEvent


def publish(events: Sequence[OutgoingEvent]) -> None:
    """Put events on the configured bus; raises PublishError unless every one is accepted."""
    if not events:
        return
    backend.event_bus().put(events)
