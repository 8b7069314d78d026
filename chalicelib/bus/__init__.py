"""The event bus adapters (EventBridge, the local SQLite bus), their routing helpers, and
the error they raise. Producers publish with `chalicelib.publishing.publish`."""

from __future__ import annotations

from chalicelib.errors import UnavailableError


class PublishError(UnavailableError, RuntimeError):
    """Some events could not be put on the bus, even after retrying the failed entries."""
