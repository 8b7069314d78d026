"""The daily X budget: not a cent more paid to X in a UTC day than X_DAILY_BUDGET_USD.

X bills pay-per-use (chalicelib/x_prices.json). Egress charges each reply, before posting
it, with what answering its message costs: the message's delivery (a Post event $0.005, a
DM $0.010) and the reply itself (a summoned reply $0.010, a DM $0.015), to the day's
counter in the guard store (SQLite locally, DynamoDB on AWS), atomically and only if the
day stays within the budget. A reply that would pass it is not posted: it ends as
REPLY_SKIPPED `budget`, and the first such reply of the day raises one alert. A reply that
X refused (nothing went out) gives its charge back.

What the counter does not see: deliveries of messages that never reach egress (skipped by
the responders, or events Magpie does not answer; `magpie x subscribe` subscribes only to
the ones it answers) and the reply lookup's reads after a crash (a few $0.001-$0.010
resources). Days are UTC, as X's own deduplication window is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.ports import AlertSink, GuardStore
from chalicelib.x_cost import MICRO, answered_message_usd, to_micro

log = logging.getLogger(__name__)

BUDGET = "budget"  # the REPLY_SKIPPED reason
ALERT_KIND = "X_BUDGET_REACHED"
SPEND_TTL_SECONDS = 40 * 24 * 3600  # a day's counter is kept a month for `magpie stats`
ALERT_TTL_SECONDS = 2 * 24 * 3600


@dataclass(frozen=True)
class Charge:
    """What one reply costs on X, and whether the day's counter holds it (a budget is set):
    given back if it was not posted."""

    day: str
    micro_usd: int
    counted: bool

    @property
    def usd(self) -> float:
        return self.micro_usd / MICRO


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%d")


class XBudget:
    def __init__(
        self,
        store: GuardStore,
        alerts: AlertSink,
        daily_budget_usd: float | None,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._alerts = alerts
        self._budget = daily_budget_usd
        self._clock = clock

    def charge(self, kind: str, text: str, uploads: int) -> Charge | None:
        """Charge a reply to today's spend; None when it would pass the budget (one alert
        is raised for the day). With no budget, nothing is counted."""
        now = self._clock()
        day = utc_day(now)
        amount = to_micro(answered_message_usd(kind, text, uploads=uploads))
        if self._budget is None:
            return Charge(day, amount, counted=False)
        limit = to_micro(self._budget)
        if self._store.take_spend(day, amount, limit, int(now) + SPEND_TTL_SECONDS):
            return Charge(day, amount, counted=True)
        log.warning("X budget of $%.2f for %s reached: reply not sent", self._budget, day)
        self._alert_once(day, now)
        return None

    def give_back(self, charge: Charge) -> None:
        if charge.counted:
            self._store.give_back_spend(charge.day, charge.micro_usd)

    def _alert_once(self, day: str, now: float) -> None:
        # The author-slot counter with a limit of one: only the first caller of the day wins.
        if self._store.take_slot(f"x-budget-alert:{day}", 1, int(now) + ALERT_TTL_SECONDS):
            self._alerts.raise_alert(budget_alert(day, self._store.spend_of(day), self._budget))


def budget_alert(day: str, spent_micro_usd: int, budget_usd: float | None) -> dict[str, Any]:
    return {
        "Kind": ALERT_KIND,
        "Reason": f"X spend ${spent_micro_usd / MICRO:.3f} of a ${budget_usd:.2f} budget on "
        f"{day} (UTC): replies are skipped until the next day",
        "Day": day,
        "SpentUsd": spent_micro_usd / MICRO,
        "BudgetUsd": budget_usd,
    }


def todays_spend(
    store: GuardStore, budget_usd: float | None, now: float
) -> dict[str, float | str | None]:
    """The day's X spend against the budget, for `magpie stats` and the dashboard."""
    day = utc_day(now)
    return {"day": day, "spent_usd": store.spend_of(day) / MICRO, "budget_usd": budget_usd}
