"""`magpie stats`: events per detail-type over a window, read from the real local event log."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from magpie.cli import main
from magpie.replay import replay_copy
from magpie.stats import count_events, parse_time, window

from chalicelib import backend
from tests.ops.lakedata import history

NOW = datetime(2026, 7, 16, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-07-15", "2026-07-15T00:00:00Z"),
        ("2026-07-15T10:00", "2026-07-15T10:00:00Z"),
        ("2026-07-15T10:00:00Z", "2026-07-15T10:00:00Z"),
        ("2026-07-15T12:00:00+02:00", "2026-07-15T10:00:00Z"),
        ("now", "2026-07-16T12:00:00Z"),
        ("90m", "2026-07-16T10:30:00Z"),
        ("2h", "2026-07-16T10:00:00Z"),
        ("1d", "2026-07-15T12:00:00Z"),
    ],
)
def test_times_are_normalised_to_the_bus_format(text, expected):
    assert parse_time(text, NOW) == expected


def test_bad_times_and_empty_windows_are_refused():
    with pytest.raises(ValueError, match="not a time"):
        parse_time("yesterday", NOW)
    with pytest.raises(ValueError, match="not before"):
        window("2026-07-16", "2026-07-15", NOW)


def test_counts_per_type_and_bucket_with_replays_apart():
    envelopes = history()
    envelopes.append(replay_copy(envelopes[1], "r1"))  # a replayed MESSAGE_RECEIVED
    span = window("2026-07-15T10:00:00Z", "2026-07-15T11:00:00Z", NOW)
    result = count_events(envelopes, span, None)
    assert result.columns == ["detail-type", "events", "replayed"]
    assert result.rows == [
        ("MESSAGE_ANALYSED", 1, 0),
        ("MESSAGE_RECEIVED", 1, 1),
        ("SEND_TWEET", 1, 0),
        ("TWEET_SENT", 1, 0),
        ("TWITTER_TWEETED", 1, 0),
    ]
    by_day = count_events(envelopes, window(None, None), "day")
    assert ("2026-07-16", "MESSAGE_RECEIVED", 4, 0) in by_day.rows
    assert ("2026-07-15", "MESSAGE_RECEIVED", 2, 1) in by_day.rows


def test_stats_command_reads_the_local_event_log(local_env, capsys):
    backend.local_bus_store().append(history())
    home = str(local_env)
    args = ["--home", home, "stats", "--since", "2026-07-16", "--until", "2026-07-16T09:30:00Z"]
    assert main([*args, "--format", "json"]) == 0
    counts = {row["detail-type"]: row["events"] for row in json.loads(capsys.readouterr().out)}
    assert counts == {
        "MESSAGE_ANALYSED": 2,
        "MESSAGE_RECEIVED": 2,
        "REPLY_SKIPPED": 1,
        "SEND_TWEET": 1,
        "TWEET_FAILED": 1,
    }
    assert main(["--home", home, "stats", "--by", "hour"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["hour", "detail-type", "events", "replayed"]
    assert "2026-07-16T10:00:00Z  MESSAGE_ANALYSIS_FAILED  1" in "\n".join(lines)
    assert main(["--home", home, "stats", "--since", "soon"]) == 2
    assert "not a time" in capsys.readouterr().err
