"""Raw items X never sends, accepted by the webhook and kept in the lake, cannot break a report.

A delivery is kept whole (every item is a raw TWITTER_* event, its detail unchanged), so a
signed attacker chooses the keys of some lake records. Keys that clash with Magpie's own
PascalCase fields (`StatusCode`, `Analysis`) made every report over a typed table fail with
"Failed to cast value". Two defences, each tested here: the raw items are written under
their own prefix (chalicelib/lake_routes.py), where no typed table reads; and the reports
that read JSON text check the types of the fields they read and count what does not fit.
"""

from __future__ import annotations

import pytest
from magpie import reports
from magpie.cli import main
from magpie.lake import LocalLake, raw_x_lake
from magpie.runtime import lake_targets

from chalicelib.bus.envelope import make_envelope
from chalicelib.events import MODELS, TWITTER_DETAIL_TYPES, OutgoingEvent
from tests.ops.lakedata import M4_ANALYSED_AT, write_lake, write_through_the_routes

# Every report `magpie report` knows (and Athena has as a named query).
REPORTS = tuple(reports.named_queries())

HOSTILE_ITEMS = [
    ("TWITTER_FAVOURITED", {"id": "x", "StatusCode": "abc"}),
    ("TWITTER_FAVOURITED", {"id": "y", "Analysis": "str"}),
    ("TWITTER_TWEETED", {"id_str": "z", "Analysis": {"SentimentScore": {"Negative": "high"}}}),
    ("TWITTER_TWEETED", {"id_str": "w", "DryRun": "maybe", "Reason": {"not": "text"}}),
    ("TWITTER_ACTIVITY", {"event_type": "x", "MessageId": ["a"], "Kind": {"k": 1}}),
    ("TWITTER_ACTIVITY", {"event_type": "y", "Author": ["a"], "Text": 5, "XCostUsd": "lots"}),
]


def raw_envelope(detail_type: str, detail: dict, time: str = "2026-07-16T10:00:00Z") -> dict:
    event = OutgoingEvent("magpie.ingress", detail_type, detail, time)
    return make_envelope(event, account="000000000000", region="eu-west-1")


@pytest.fixture
def clean_and_hostile(tmp_path):
    clean, hostile = tmp_path / "clean" / "lake", tmp_path / "hostile" / "lake"
    write_lake(clean)
    write_lake(hostile)
    write_through_the_routes(hostile, [raw_envelope(*item) for item in HOSTILE_ITEMS])
    return clean, hostile


def test_every_detail_type_lands_in_exactly_one_lake_route(tmp_path):
    routes = lake_targets(tmp_path)
    detail_types = [*TWITTER_DETAIL_TYPES, *(model.DETAIL_TYPE for model in MODELS), "NEW_KIND"]
    for detail_type in detail_types:
        envelope = raw_envelope(detail_type, {})
        assert [r.name for r in routes if r.matches(envelope)] == (
            ["lake-x-raw"] if detail_type.startswith("TWITTER_") else ["lake"]
        ), detail_type


def test_raw_items_are_kept_beside_magpies_events_not_among_them(clean_and_hostile):
    _, hostile = clean_and_hostile
    root_types = {r["detail-type"] for r in LocalLake(hostile).records()}
    assert root_types and not {t for t in root_types if t.startswith("TWITTER_")}
    raw = raw_x_lake(hostile).records()
    assert [(r["detail-type"], r["detail"]) for r in raw][-len(HOSTILE_ITEMS) :] == HOSTILE_ITEMS
    # ...and they can still be queried, as JSON text, from their own table.
    result = reports.run(
        "SELECT \"detail-type\", json_extract_scalar(detail, '$.StatusCode') FROM x_raw_events"
        " WHERE json_extract_scalar(detail, '$.id') = 'x'",
        hostile,
    )
    assert result.rows == [("TWITTER_FAVOURITED", "abc")]


@pytest.mark.parametrize("name", REPORTS)
def test_raw_items_with_clashing_keys_leave_the_reports_unchanged(clean_and_hostile, name, capsys):
    clean, hostile = clean_and_hostile
    sql = reports.query_text(name)
    assert reports.run(sql, hostile).rows == reports.run(sql, clean).rows
    assert main(["--home", str(hostile.parent), "report", name]) == 0
    assert "Failed to cast" not in capsys.readouterr().err


def test_raw_items_written_at_the_root_by_an_older_magpie_still_break_a_typed_report(tmp_path):
    """Why the routes matter: the same items in the root, as the lake kept them before."""
    lake_root = tmp_path / "lake"
    write_lake(lake_root)
    lake = LocalLake(lake_root)
    for item in HOSTILE_ITEMS:
        lake.write(raw_envelope(*item))
    with pytest.raises(reports.ReportError, match=r"(?i)cast"):
        reports.run(reports.query_text("replies-by-outcome"), lake_root)


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
