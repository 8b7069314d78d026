"""Raw items X never sends, accepted by the webhook and kept in the lake, cannot break a report.

A delivery is kept whole (every item is a raw TWITTER_* event, its detail unchanged), so a
signed attacker chooses the keys of some lake records. Keys that clash with Magpie's own
PascalCase fields (`StatusCode`, `Analysis`) made every report over the typed table fail
with "Failed to cast value". The reports read only the fields of the events they report on,
as JSON text with their types checked, and count what does not fit.
"""

from __future__ import annotations

import pytest
from magpie import reports
from magpie.cli import main
from magpie.lake import LocalLake

from chalicelib.bus.envelope import make_envelope
from chalicelib.events import OutgoingEvent
from tests.ops.lakedata import M4_ANALYSED_AT, write_lake

# Reports named by the attack review, each over the JSON-text table.
REPORTS = ("alerts-per-author", "sentiment-per-day", "people-recognised")

HOSTILE_ITEMS = [
    ("TWITTER_FAVOURITED", {"id": "x", "StatusCode": "abc"}),
    ("TWITTER_FAVOURITED", {"id": "y", "Analysis": "str"}),
    ("TWITTER_TWEETED", {"id_str": "z", "Analysis": {"SentimentScore": {"Negative": "high"}}}),
    ("TWITTER_ACTIVITY", {"event_type": "x", "MessageId": ["a"], "Kind": {"k": 1}}),
]


def write_raw(lake_root, items, time="2026-07-16T10:00:00Z") -> None:
    lake = LocalLake(lake_root)
    for detail_type, detail in items:
        event = OutgoingEvent("magpie.ingress", detail_type, detail, time)
        lake.write(make_envelope(event, account="000000000000", region="eu-west-1"))


@pytest.fixture
def clean_and_hostile(tmp_path):
    clean, hostile = tmp_path / "clean" / "lake", tmp_path / "hostile" / "lake"
    write_lake(clean)
    write_lake(hostile)
    write_raw(hostile, HOSTILE_ITEMS)
    return clean, hostile


@pytest.mark.parametrize("name", REPORTS)
def test_raw_items_with_clashing_keys_leave_the_reports_unchanged(clean_and_hostile, name, capsys):
    clean, hostile = clean_and_hostile
    sql = reports.query_text(name)
    assert reports.run(sql, hostile).rows == reports.run(sql, clean).rows
    assert main(["--home", str(hostile.parent), "report", name]) == 0
    assert "Failed to cast" not in capsys.readouterr().err


def analysed(detail: dict, time: str) -> dict:
    event = OutgoingEvent("magpie.analysis", "MESSAGE_ANALYSED", detail, time)
    return make_envelope(event, account="000000000000", region="eu-west-1")


def test_an_analysed_event_whose_fields_do_not_fit_is_counted_not_fatal(tmp_path):
    lake_root = tmp_path / "lake"
    write_lake(lake_root)
    lake = LocalLake(lake_root)
    face = {"Name": ["not", "a", "name"], "MatchConfidence": "very"}
    odd = {
        "MessageId": "m9",
        "Kind": "MENTION",
        "Analysis": {
            "TextSentiment": {"not": "a string"},
            "Images": [{"Analysis": {"CelebrityFaces": [face]}}],
        },
    }
    lake.write(analysed(odd, M4_ANALYSED_AT))
    lake.write(analysed({"MessageId": "m10", "Kind": "MENTION", "Analysis": "str"}, M4_ANALYSED_AT))

    days = reports.run(reports.query_text("sentiment-per-day"), lake_root)
    (last_day,) = [row for row in days.rows if str(row[0]) == "2026-07-16"]
    assert days.columns[-1] == "unreadable" and last_day[-1] == 1
    people = reports.run(reports.query_text("people-recognised"), lake_root)
    assert ("(unreadable)", 1) in [row[:2] for row in people.rows]
    assert [row[0] for row in people.rows if row[0] != "(unreadable)"] == [
        "Eileen Collins",
        "Grace Hopper",
    ]
