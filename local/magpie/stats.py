"""`magpie stats`: events per detail-type over a time window, from the local event log.

The local mirror of the CloudWatch metric filters: on AWS a catch-all rule copies every
event on the bus into a log group, and one metric filter per detail-type counts them.
Locally the bus's own log (LocalBusStore) is that log group. Replayed copies are counted
apart, as they reach the log group on AWS as well but repeat an original.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.errors import InputError
from magpie.reports import Result

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
BUCKETS = {"minute": 16, "hour": 13, "day": 10}  # ISO prefix length of each bucket


class TimeWindowError(InputError):
    """A time the window cannot use: not a time, out of the calendar's range, or a window
    whose start is not before its end."""


def parse_time(value: str, now: datetime | None = None) -> str:
    """An instant as the bus stores it (YYYY-MM-DDTHH:MM:SSZ, UTC).

    Accepts ISO-8601 (a date, or a date and time with or without a zone; no zone is UTC),
    `now`, or an age such as `90m`, `2h`, `7d` (that long before now).
    """
    now = now or datetime.now(UTC)
    text = value.strip()
    try:
        moment = _moment(text, now)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError as exc:
        raise TimeWindowError(
            f"not a time: {value!r} (use ISO-8601, 'now' or an age like 2h)"
        ) from exc
    except OverflowError as exc:  # an age or a zone shift that leaves years 1..9999
        raise TimeWindowError(f"time out of range: {value!r} (years 1 to 9999)") from exc


def _moment(text: str, now: datetime) -> datetime:
    relative = _RELATIVE.match(text)
    if text == "now":
        return now
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    start: str  # inclusive
    end: str  # exclusive

    def __contains__(self, time: str) -> bool:
        return self.start <= time < self.end


def window(since: str | None, until: str | None, now: datetime | None = None) -> Window:
    start = parse_time(since, now) if since else "0000-01-01T00:00:00Z"
    end = parse_time(until, now) if until else "9999-12-31T23:59:59Z"
    if start >= end:
        raise TimeWindowError(f"the window's start {start} is not before its end {end}")
    return Window(start, end)


def count_events(envelopes: Iterable[dict[str, Any]], span: Window, by: str | None) -> Result:
    """Rows (bucket?, detail-type, events, replayed), sorted; `by` is minute|hour|day|None."""
    originals: Counter[tuple[str, str]] = Counter()
    replayed: Counter[tuple[str, str]] = Counter()
    for envelope in envelopes:
        time = str(envelope.get("time", ""))
        if time not in span:
            continue
        bucket = _bucket(time, by)
        key = (bucket, str(envelope.get("detail-type")))
        (replayed if envelope.get("replay-name") else originals)[key] += 1
    keys = sorted(set(originals) | set(replayed))
    if by:
        rows: list[tuple[Any, ...]] = [(b, t, originals[(b, t)], replayed[(b, t)]) for b, t in keys]
        return Result([by, "detail-type", "events", "replayed"], rows)
    rows = [(t, originals[(b, t)], replayed[(b, t)]) for b, t in keys]
    return Result(["detail-type", "events", "replayed"], rows)


def _bucket(time: str, by: str | None) -> str:
    if by is None:
        return ""
    if by not in BUCKETS:
        raise ValueError(f"unknown bucket {by!r}; choose one of {', '.join(BUCKETS)}")
    prefix = time[: BUCKETS[by]]
    return {"minute": prefix + ":00Z", "hour": prefix + ":00:00Z", "day": prefix}[by]


def x_spend_line(spend: dict[str, Any]) -> str:
    """Today's priced X spend against the daily budget (chalicelib/egress/budget.py)."""
    spent = f"X spend {spend['day']} (UTC): ${spend['spent_usd']:.3f}"
    if spend["budget_usd"] is None:
        return f"{spent} counted (no daily budget: X_DAILY_BUDGET_USD is unset)"
    budget = spend["budget_usd"]
    share = f"{spend['spent_usd'] / budget:.0%}" if budget else "all"
    return f"{spent} of a ${budget:.2f} daily budget ({share})"


def todays_x_spend(now: float | None = None) -> dict[str, Any]:
    """The day's X spend from the guard store the local egress counts it in."""
    import time

    from chalicelib import backend
    from chalicelib.config import settings
    from chalicelib.egress.budget import todays_spend

    return todays_spend(
        backend.guard_store(),
        settings().x_daily_budget_usd,
        now if now is not None else time.time(),
    )
