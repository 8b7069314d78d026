"""`magpie stats` shows the day's X spend against the daily budget, from the local guard store."""

from __future__ import annotations

import json
import time

from magpie.cli import main

from chalicelib import backend
from chalicelib.egress.budget import XBudget


def test_stats_shows_todays_x_spend_against_the_budget(local_env, monkeypatch, capsys):
    monkeypatch.setenv("X_DAILY_BUDGET_USD", "1.5")
    backend.reset()
    budget = XBudget(backend.guard_store(), backend.alert_sink(), 1.5, time.time)
    for _ in range(2):
        budget.charge("DIRECT_MESSAGE", "Here is a fact.", uploads=0)  # $0.025 each

    assert main(["--home", str(local_env), "stats"]) == 0
    assert "$0.050 of a $1.50 daily budget (3%)" in capsys.readouterr().out

    assert main(["--home", str(local_env), "stats", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    json.loads(out)  # the table alone: the spend goes to stderr
    assert "$0.050 of a $1.50 daily budget" in err


def test_stats_says_when_no_budget_is_set(local_env, capsys):
    assert main(["--home", str(local_env), "stats"]) == 0
    assert "no daily budget: X_DAILY_BUDGET_USD is unset" in capsys.readouterr().out
