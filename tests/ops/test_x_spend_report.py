"""The x-spend-per-day report: what X billed for the replies of each UTC day, over the lake."""

from __future__ import annotations

import datetime

from magpie import reports
from magpie.lake import LocalLake

from chalicelib.events import ReplySkipped, TweetSent
from tests.ops.lakedata import envelope


def sent(message_id: str, cost: float, *, dry_run: bool = False) -> TweetSent:
    return TweetSent(
        MessageId=message_id,
        Kind="MENTION",
        ReplyToUserId="111",
        Text="reply",
        SentId="s-" + message_id,
        DryRun=dry_run,
        XCostUsd=cost,
    )


def test_x_spend_per_day_sums_live_replies_and_counts_the_budgets_skips(tmp_path):
    lake = LocalLake(tmp_path / "lake")
    for model, time in [
        (sent("1", 0.015), "2026-07-15T10:00:00Z"),
        (sent("2", 0.025), "2026-07-15T11:00:00Z"),
        (sent("3", 0.015, dry_run=True), "2026-07-15T12:00:00Z"),
        (ReplySkipped("4", "MENTION", "budget", "111"), "2026-07-15T13:00:00Z"),
        (ReplySkipped("5", "MENTION", "author_rate_limited", "111"), "2026-07-15T13:00:00Z"),
        (sent("6", 0.015), "2026-07-16T09:00:00Z"),
    ]:
        lake.write(envelope(model, time))

    result = reports.run(reports.query_text("x-spend-per-day"), tmp_path / "lake")

    assert result.columns == [
        "day",
        "replies",
        "x_spend_usd",
        "dry_run_replies",
        "dry_run_usd",
        "budget_skipped",
    ]
    assert [tuple(row) for row in result.rows] == [
        (datetime.date(2026, 7, 15), 2, 0.04, 1, 0.015, 1),
        (datetime.date(2026, 7, 16), 1, 0.015, 0, 0.0, 0),
    ]
