"""The dashboard shows the day's X spend against the daily budget (the egress budget's counter)."""

from __future__ import annotations

import json
import time

from magpie.dashboard.api import STATIC, DashboardApi

from chalicelib import backend
from chalicelib.egress.budget import XBudget


def test_the_summary_carries_todays_x_spend_and_the_budget(local_env, monkeypatch):
    monkeypatch.setenv("X_DAILY_BUDGET_USD", "0.03")
    backend.reset()
    budget = XBudget(backend.guard_store(), backend.alert_sink(), 0.03, time.time)
    budget.charge("MENTION", "Here is a joke.", uploads=0)

    api = DashboardApi(backend.local_bus_store(), local_env, live=False)
    spend = json.loads(api.handle("GET", "/api/summary").body)["health"]["XSpend"]

    assert spend["spent_usd"] == 0.015 and spend["budget_usd"] == 0.03
    assert spend["day"] == time.strftime("%Y-%m-%d", time.gmtime())


def test_the_page_has_the_tile_the_script_fills():
    page = (STATIC / "index.html").read_text()
    script = (STATIC / "app.js").read_text()
    for element in ("tile-x-spend", "x-spend", "x-budget"):
        assert f'id="{element}"' in page and f'"{element}"' in script
