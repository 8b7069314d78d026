"""When X says a message was made, in the three spellings X uses, checked for range.

A time we cannot place is refused (400) rather than replaced by "now": a wrong ReceivedAt
would silently corrupt reply-latency figures and the lake's date partitions.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.errors import InputError

# The first post on X; nothing X delivers can be older.
EARLIEST = datetime(2006, 3, 21, tzinfo=UTC)
# Clocks drift; a day ahead is skew, more is a broken value.
FUTURE_SLACK = timedelta(days=1)

_V1_FORMAT = "%a %b %d %H:%M:%S %z %Y"  # "Mon May 19 14:01:46 +0000 2025"
_DIGITS = re.compile(r"-?[0-9]{1,30}")


class InvalidTimestamp(InputError):
    """A platform time that is present but cannot be parsed or is out of range."""


def from_epoch_ms(value: Any) -> datetime:
    """`timestamp_ms` / `created_timestamp`: milliseconds since the epoch, as a number or
    a string of digits."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidTimestamp(f"epoch milliseconds expected, got {type(value).__name__}")
    if isinstance(value, str) and not _DIGITS.fullmatch(value.strip()):
        raise InvalidTimestamp(f"epoch milliseconds expected, got {value[:40]!r}")
    millis = int(value)
    # Compared as integers first: datetime arithmetic would overflow on absurd values.
    low = int(EARLIEST.timestamp() * 1000)
    high = int((datetime.now(UTC) + FUTURE_SLACK).timestamp() * 1000)
    if not low <= millis <= high:
        raise InvalidTimestamp(f"timestamp {millis} ms is out of range")
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def from_iso(value: Any) -> datetime:
    """X API v2's `created_at`: ISO 8601, e.g. "2026-07-24T21:23:23.000Z"."""
    if not isinstance(value, str):
        raise InvalidTimestamp(f"ISO 8601 time expected, got {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidTimestamp(f"not an ISO 8601 time: {value[:40]!r}") from exc
    return _checked(moment if moment.tzinfo else moment.replace(tzinfo=UTC), value)


def from_v1(value: Any) -> datetime:
    """The v1.1 objects' `created_at`: "Mon May 19 14:01:46 +0000 2025"."""
    if not isinstance(value, str):
        raise InvalidTimestamp(f"v1.1 time expected, got {type(value).__name__}")
    try:
        moment = datetime.strptime(value.strip(), _V1_FORMAT)
    except ValueError as exc:
        raise InvalidTimestamp(f"not a v1.1 time: {value[:40]!r}") from exc
    return _checked(moment, value)


def _checked(moment: datetime, original: str) -> datetime:
    try:
        moment = moment.astimezone(UTC)  # overflows at year 1 and year 9999 with an offset
    except OverflowError as exc:
        raise InvalidTimestamp(f"time {original[:40]!r} is out of range") from exc
    if not EARLIEST <= moment <= datetime.now(UTC) + FUTURE_SLACK:
        raise InvalidTimestamp(f"time {original[:40]!r} is out of range")
    return moment


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
