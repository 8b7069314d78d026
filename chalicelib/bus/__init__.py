"""The event bus port's publishing side: one helper every producer calls."""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.errors import UnavailableError
from chalicelib.events import OutgoingEvent


class PublishError(UnavailableError, RuntimeError):
    """Some events could not be put on the bus, even after retrying the failed entries."""


def publish(events: Sequence[OutgoingEvent]) -> None:
    """Put events on the configured bus; raises PublishError unless every one is accepted."""
    if not events:
        return
    from chalicelib.backend import event_bus

    event_bus().put(events)
