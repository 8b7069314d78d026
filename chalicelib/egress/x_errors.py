"""What can go wrong talking to X, by what the caller should do about it.

The Poster port's errors: the X client raises them, and the egress flow (`send.py`) and the
command line decide on them, without importing the client itself.
"""

from __future__ import annotations

from chalicelib.errors import MagpieError, RefusedError, UnavailableError


class XError(MagpieError):
    """Any failure talking to X. Subclasses say what the caller should do about it."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RateLimited(XError, UnavailableError):
    """429: try again at `reset_at` (epoch seconds), or later if it is unknown."""

    def __init__(self, message: str, *, reset_at: float | None, status_code: int = 429) -> None:
        super().__init__(message, status_code=status_code)
        self.reset_at = reset_at


class TransientXError(XError, UnavailableError):
    """5xx, timeouts and connection errors: worth retrying with backoff."""


class FinalXError(XError, RefusedError):
    """X refused for good (duplicate text, reply not allowed, bad request...): never retry.

    `reason` is one of "duplicate_text", "not_summoned", "forbidden", "bad_request",
    "not_found" or "http_<status>"."""

    def __init__(self, message: str, *, reason: str, status_code: int | None = None) -> None:
        super().__init__(message, status_code=status_code)
        self.reason = reason


class Unauthorized(XError, RefusedError):
    """401: the credentials are wrong or revoked; retrying cannot help."""


class UnconfirmedPost(XError):
    """X said yes with a body we cannot read: the post may be out, so it is never retried."""
