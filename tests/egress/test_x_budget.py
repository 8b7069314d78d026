"""The daily X budget at its edge: the reply before it is sent, the one that would pass it is
REPLY_SKIPPED `budget`, one alert that day; locally (SQLite, the dry-run outbox) and on AWS
(DynamoDB and SNS under moto, X through `responses`).

A mention's reply costs $0.015 to answer: its delivery ($0.005) and a summoned reply
($0.010), chalicelib/x_prices.json.
"""

# ruff: noqa: F811  (the fixtures imported from the egress and guard tests are arguments here)
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib import backend
from chalicelib.egress.budget import XBudget, todays_spend
from chalicelib.egress.send import send_reply
from chalicelib.events import utc_now_iso
from tests.egress.test_egress_app import (  # noqa: F401 (fixtures)
    TWEETS_URL,
    aws,
    client,
    invoke,
    published,
    x,
)
from tests.egress.test_egress_app import command as aws_command
from tests.egress.test_guards import T0, Clock, store_and_clock  # noqa: F401 (fixture)
from tests.egress.test_send import FIXTURE, outcomes

REPLY_USD = 0.015


class Alerts:
    """An alert sink that keeps what it is given."""

    def __init__(self) -> None:
        self.raised: list[dict] = []

    def raise_alert(self, alert: dict, key: str | None = None) -> None:
        self.raised.append(alert)


def test_the_reply_that_would_pass_the_budget_is_refused_and_alerted_once(store_and_clock):
    store, clock = store_and_clock
    alerts = Alerts()
    budget = XBudget(store, alerts, 2 * REPLY_USD, clock)

    charges = [budget.charge("MENTION", "Here is a joke.", uploads=0) for _ in range(4)]

    assert [c is not None for c in charges] == [True, True, False, False]
    assert todays_spend(store, 2 * REPLY_USD, clock())["spent_usd"] == pytest.approx(0.030)
    (alert,) = alerts.raised
    assert alert["Kind"] == "X_BUDGET_REACHED" and alert["Day"] == "2026-07-15"
    assert alert["SpentUsd"] == pytest.approx(0.030)


def test_a_reply_not_posted_gives_its_charge_back_and_the_next_day_starts_at_zero(
    store_and_clock,
):
    store, clock = store_and_clock
    budget = XBudget(store, Alerts(), REPLY_USD, clock)
    charge = budget.charge("MENTION", "hi", uploads=0)
    assert charge is not None and budget.charge("MENTION", "hi", uploads=0) is None

    budget.give_back(charge)
    assert budget.charge("MENTION", "hi", uploads=0) is not None

    clock.now = T0 + 24 * 3600
    assert budget.charge("MENTION", "hi", uploads=0) is not None
    assert todays_spend(store, REPLY_USD, clock())["spent_usd"] == pytest.approx(REPLY_USD)


def test_a_dm_and_a_reply_with_a_url_are_charged_what_x_bills_them(store_and_clock):
    store, clock = store_and_clock
    budget = XBudget(store, Alerts(), 1.0, clock)
    dm = budget.charge("DIRECT_MESSAGE", "Here is a fact.", uploads=0)
    url = budget.charge("MENTION", "see example.com", uploads=0)
    assert dm is not None and dm.usd == pytest.approx(0.010 + 0.015)
    assert url is not None and url.usd == pytest.approx(0.005 + 0.200)


def test_no_budget_counts_nothing(store_and_clock):
    store, clock = store_and_clock
    charge = XBudget(store, Alerts(), None, clock).charge("MENTION", "hi", uploads=0)
    assert charge is not None and not charge.counted and charge.usd == pytest.approx(REPLY_USD)
    assert store.spend_of("2026-07-15") == 0


def test_concurrent_replies_never_spend_past_the_budget(tmp_path):
    from chalicelib.egress.guards import SqliteGuardStore

    store = SqliteGuardStore(tmp_path / "guards.sqlite3")
    budget = XBudget(store, Alerts(), 10 * REPLY_USD, lambda: T0)

    def reply(_: int) -> bool:
        return budget.charge("MENTION", "hi", uploads=0) is not None

    with ThreadPoolExecutor(max_workers=6) as pool:
        admitted = list(pool.map(reply, range(30)))
    assert admitted.count(True) == 10


# --- through egress ---------------------------------------------------------------------


def local_command(n: int) -> dict:
    base = {k: v for k, v in FIXTURE.items() if k != "ImageKey"}
    return {
        **base,
        "MessageId": f"20773936683937341{n:02d}",
        "ImageKeys": [],
        "ReceivedAt": utc_now_iso(),
    }


def test_locally_the_third_reply_of_a_two_reply_budget_is_skipped_with_one_alert(
    local_env, monkeypatch
):
    monkeypatch.setenv("X_DAILY_BUDGET_USD", "0.03")
    backend.reset()

    results = [send_reply(local_command(n)) for n in range(4)]

    assert [r.DETAIL_TYPE for r in results] == ["TWEET_SENT"] * 2 + ["REPLY_SKIPPED"] * 2
    assert [r.Reason for r in results[2:]] == ["budget", "budget"]
    assert [d["XCostUsd"] for _, t, d in outcomes() if t == "TWEET_SENT"] == [REPLY_USD] * 2
    (alert,) = backend.alert_sink().read()
    assert alert["Kind"] == "X_BUDGET_REACHED"


def test_on_aws_the_reply_that_would_pass_the_budget_is_skipped_and_alerted_through_sns(
    aws, x, client, monkeypatch
):
    monkeypatch.setenv("X_DAILY_BUDGET_USD", "0.015")
    backend.reset()
    x.post(TWEETS_URL, status=201, json={"data": {"id": "1900000000000000001", "text": "x"}})

    invoke(client, aws_command(MessageId="2077393668393734101"))
    invoke(client, aws_command(MessageId="2077393668393734102"))
    invoke(client, aws_command(MessageId="2077393668393734103"))

    kinds = [(t, d.get("Reason")) for _, t, d in published(aws)]
    assert kinds == [("TWEET_SENT", None), ("REPLY_SKIPPED", "budget"), ("REPLY_SKIPPED", "budget")]
    assert len(x.calls) == 1
    (alert,) = aws.alerts.drain()
    assert alert["Kind"] == "X_BUDGET_REACHED" and alert["BudgetUsd"] == 0.015
