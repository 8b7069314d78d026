"""`magpie report`: the named queries, run by DuckDB over real lake files written by LocalLake."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime

import pytest
from magpie import reports
from magpie.cli import main
from magpie.lake import LocalLake

from tests.ops.lakedata import M1_ANALYSED_AT, M4_ANALYSED_AT, envelope, message, sent, write_lake

# The reference's three Athena queries, verbatim from its README.
REFERENCE = {
    "celebrities": """SELECT time, detail.author, celebrityfaces.name
FROM "analysed-messages-table"
CROSS JOIN UNNEST(detail.analysis.images) as t(images)
CROSS JOIN UNNEST(images.analysis.celebrityfaces) as t(celebrityfaces)
WHERE "detail-type" = 'MESSAGE_ANALYSED'
ORDER BY time DESC""",
    "image-labels": """SELECT time, detail.author, detail.text, labels.name
FROM "analysed-messages-table"
CROSS JOIN UNNEST(detail.analysis.images) as t(images)
CROSS JOIN UNNEST(images.analysis.labels) as t(labels)
WHERE "detail-type" = 'MESSAGE_ANALYSED'
ORDER BY time DESC""",
    "positive-text": """SELECT time, detail.author, detail.analysis.textsentiment, detail.text
FROM "analysed-messages-table"
CROSS JOIN UNNEST(detail.analysis.images) as t(images)
WHERE "detail-type" = 'MESSAGE_ANALYSED' AND detail.analysis.textsentiment='POSITIVE'
ORDER BY time DESC""",
}


def ts(iso: str) -> datetime:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def lake(tmp_path):
    root = tmp_path / "home" / "lake"
    write_lake(root)
    return root


def run_named(name: str, lake) -> reports.Result:
    return reports.run(reports.query_text(name), lake)


def without_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.startswith("--")).strip()


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_the_reference_queries_ship_with_their_text_unchanged(name):
    assert without_comments(reports.query_text(name)) == REFERENCE[name]


def test_the_reference_table_has_exactly_the_reference_columns(lake):
    result = reports.run('SELECT * FROM "analysed-messages-table" LIMIT 0', lake)
    assert result.columns == ["detail-type", "source", "time", "detail"]


def test_celebrities_reference_query(lake):
    result = run_named("celebrities", lake)
    assert result.columns == ["time", "author", "name"]
    assert sorted(result.rows) == sorted(
        [
            (ts(M1_ANALYSED_AT), "ana", "Eileen Collins"),
            (ts(M4_ANALYSED_AT), "ana", "Eileen Collins"),
            (ts(M4_ANALYSED_AT), "ana", "Grace Hopper"),
        ]
    )
    times = [row[0] for row in result.rows]
    assert times == sorted(times, reverse=True)  # ORDER BY time DESC


def test_image_labels_reference_query(lake):
    result = run_named("image-labels", lake)
    assert result.columns == ["time", "author", "text", "name"]
    assert sorted(result.rows) == sorted(
        [
            (ts(M1_ANALYSED_AT), "ana", "look at her", "Person"),
            (ts(M1_ANALYSED_AT), "ana", "look at her", "Text"),
            (ts(M4_ANALYSED_AT), "ana", "who are they", "Person"),
            (ts(M4_ANALYSED_AT), "ana", "who are they", "Person"),
        ]
    )


def test_the_reference_positive_text_query_drops_text_only_messages(lake):
    """The bug the corrected query fixes: bob's text-only message is missing, and ana's
    two-photo message is there twice."""
    rows = run_named("positive-text", lake).rows
    assert sorted(r[1] for r in rows) == ["ana", "ana", "ana"]
    assert [r[3] for r in rows].count("who are they") == 2


def test_corrected_positive_text_lists_every_positive_message_once(lake):
    result = run_named("positive-text-corrected", lake)
    assert result.columns == ["time", "author", "textsentiment", "text"]
    assert result.rows == [
        (ts(M4_ANALYSED_AT), "ana", "POSITIVE", "who are they"),
        (ts("2026-07-15T11:00:01Z"), "bob", "POSITIVE", "you are great"),
        (ts(M1_ANALYSED_AT), "ana", "POSITIVE", "look at her"),
    ]


def test_sentiment_per_day(lake):
    result = run_named("sentiment-per-day", lake)
    assert result.columns == [
        "day", "messages", "positive", "negative", "neutral", "mixed", "unknown", "unreadable",
    ]  # fmt: skip
    assert [(str(r[0]), *r[1:]) for r in result.rows] == [
        ("2026-07-15", 2, 2, 0, 0, 0, 0, 0),
        ("2026-07-16", 3, 1, 2, 0, 0, 0, 0),
    ]


def test_top_image_labels(lake):
    result = run_named("top-image-labels", lake)
    assert result.columns == ["label", "images", "avg_confidence"]
    assert result.rows == [("Person", 3, 97.0), ("Text", 1, 88.0)]


def test_people_recognised(lake):
    result = run_named("people-recognised", lake)
    assert result.columns == [
        "person", "sightings", "messages", "avg_match_confidence", "last_seen",
    ]  # fmt: skip
    assert result.rows == [
        ("Eileen Collins", 2, 2, 95.0, M4_ANALYSED_AT),
        ("Grace Hopper", 1, 1, 95.0, M4_ANALYSED_AT),
    ]


def test_alerts_per_author(lake):
    """eve's message is negative, but below the alert rule's threshold: no alert."""
    result = run_named("alerts-per-author", lake)
    assert result.columns == [
        "author", "alerts", "negative_messages", "analysis_failed", "reply_failed",
    ]  # fmt: skip
    assert result.rows == [("ana", 1, 0, 0, 1), ("cy", 1, 1, 0, 0), ("dan", 1, 0, 1, 0)]


def test_replies_by_outcome(lake):
    result = run_named("replies-by-outcome", lake)
    assert result.columns == ["outcome", "reason", "replies"]
    assert result.rows == [
        ("FAILED", "forbidden", 1),
        ("SENT", None, 1),
        ("SENT_DRY_RUN", None, 1),
        ("SKIPPED", "rate_limited", 1),
    ]


def test_reply_latency(lake):
    """m1: received 10:00:00, posted 09:59:50, SentAt 10:00:04 -> 4 s, 14 s since posted.
    m2: received 11:00:00, no ReceivedAt, no SentAt, TWEET_SENT at 11:00:10 -> 10 s, 10 s."""
    result = run_named("reply-latency", lake)
    assert result.columns == [
        "replies", "mean_seconds", "p95_seconds", "max_seconds", "mean_since_post_seconds",
        "p95_since_post_seconds", "delivered_late",
    ]  # fmt: skip
    assert result.rows == [(2, 7.0, 10.0, 10.0, 12.0, 14.0, 0)]


def test_reply_latency_of_quick_replies_in_whole_second_times_is_not_zero(tmp_path):
    """Five replies: four in the same whole second as their message, one a second later,
    as `magpie demo` gives. Their typical latency is under a second, not 0 s; and posts
    written months before they arrived (old samples, a redelivered backlog) are counted
    apart instead of swamping the author's wait."""
    lake = LocalLake(tmp_path / "lake")
    for n in range(5):
        received = message(f"90{n}", "ana", "hi", received_at="2026-07-15T14:00:00Z")
        lake.write(envelope(received, f"2026-12-02T07:27:4{n}Z"))
        sent_at = f"2026-12-02T07:27:4{n + (n == 4)}Z"
        lake.write(envelope(sent(received, dry_run=True, sent_at=sent_at), sent_at))
    fresh = message("999", "bob", "hi", received_at="2026-12-02T07:27:58Z")
    lake.write(envelope(fresh, "2026-12-02T07:28:00Z"))
    lake.write(envelope(sent(fresh, dry_run=True, sent_at=None), "2026-12-02T07:28:01Z"))
    result = run_named("reply-latency", lake.root)
    row = dict(zip(result.columns, result.rows[0], strict=True))
    assert row["replies"] == 6
    assert 0 < row["mean_seconds"] < 1  # (0 + 0 + 0 + 0 + 1 + 1) / 6
    assert row["max_seconds"] == 1.0
    assert row["mean_since_post_seconds"] == 3.0  # only the fresh post: 07:27:58 -> 07:28:01
    assert row["delivered_late"] == 5


def test_duplicated_and_replayed_records_count_once(lake):
    result = reports.run(
        "SELECT detail.messageid, count(*) FROM magpie_events"
        " WHERE \"detail-type\" = 'MESSAGE_ANALYSED' GROUP BY 1 ORDER BY 1",
        lake,
    )
    assert result.rows == [("1001", 1), ("1002", 1), ("1004", 1), ("1006", 1), ("2001", 1)]


def test_every_named_query_runs_on_an_empty_lake(tmp_path):
    for name in reports.named_queries():
        result = reports.run(reports.query_text(name), tmp_path / "no-lake")
        assert result.columns, name


def test_glue_types_become_duckdb_types():
    assert reports.duckdb_type("array<struct<Name:string,Confidence:double>>") == (
        'STRUCT("Name" VARCHAR, "Confidence" DOUBLE)[]'
    )
    with pytest.raises(reports.ReportError):
        reports.duckdb_type("struct<Name:uuid>")


# --- the command -----------------------------------------------------------------------


def test_report_command_formats(lake, capsys):
    home = str(lake.parent)
    assert main(["--home", home, "report", "replies-by-outcome", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] == {"outcome": "FAILED", "reason": "forbidden", "replies": 1}

    assert main(["--home", home, "report", "positive-text-corrected", "--format", "csv"]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert table[0] == ["time", "author", "textsentiment", "text"]
    assert table[1] == ["2026-07-16T09:00:02Z", "ana", "POSITIVE", "who are they"]

    assert main(["--home", home, "report", "top-image-labels"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split() == ["label", "images", "avg_confidence"]
    assert text[2].split() == ["Person", "3", "97.0"]
    assert text[-1] == "(2 rows)"


def test_a_torn_lake_line_is_left_out_and_said_so(lake, capsys):
    # A crash or a full disk can cut a record short: the report still runs on the rest.
    before = run_named("replies-by-outcome", lake).rows
    (path, *_) = reports.lake_files(lake)
    with path.open("ab") as handle:
        handle.write(b'{"version":"0","id":"torn","detail-type":"TWEET_SE\n')

    result = run_named("replies-by-outcome", lake)

    assert result.rows == before
    assert result.skipped.startswith("1 torn lake line(s) skipped (")
    assert main(["--home", str(lake.parent), "report", "replies-by-outcome"]) == 0
    assert "1 torn lake line(s) skipped" in capsys.readouterr().err


def test_a_lake_that_fits_no_table_is_still_an_error_not_a_silent_skip(tmp_path):
    root = tmp_path / "lake" / "year=2026" / "month=07" / "day=16"
    root.mkdir(parents=True)
    (root / "bad.json").write_text('{"id": "x", "time": {"not": "a string"}}\n')
    with pytest.raises(reports.ReportError):
        reports.run('SELECT * FROM "analysed-messages-table"', tmp_path / "lake")


def test_report_command_runs_ad_hoc_sql(lake, capsys):
    sql = 'SELECT "detail-type", count(*) AS n FROM magpie_events GROUP BY 1 ORDER BY 2 DESC, 1'
    assert main(["--home", str(lake.parent), "report", "--sql", sql, "--format", "json"]) == 0
    counts = {row["detail-type"]: row["n"] for row in json.loads(capsys.readouterr().out)}
    assert counts["MESSAGE_ANALYSED"] == 5
    assert "TWITTER_TWEETED" not in counts  # X's raw items have a table of their own
    raw_sql = 'SELECT "detail-type", count(*) AS n FROM x_raw_events GROUP BY 1'
    assert main(["--home", str(lake.parent), "report", "--sql", raw_sql, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"detail-type": "TWITTER_TWEETED", "n": 1}]


def test_report_command_lists_and_rejects(lake, capsys):
    home = str(lake.parent)
    assert main(["--home", home, "report", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "reply-latency" in listed and "positive-text-corrected" in listed
    assert main(["--home", home, "report", "no-such-query"]) == 2
    assert "no query named 'no-such-query'" in capsys.readouterr().err
    assert main(["--home", home, "report", "--sql", "SELECT nope FROM magpie_events"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["--home", home, "report"]) == 2


def test_alerts_query_uses_the_alert_rules_threshold():
    from chalicelib.alerts import ALERT_MIN_NEGATIVE_SCORE

    sql = reports.query_text("alerts-per-author")
    (threshold,) = re.findall(r"negative_score >= ([0-9.]+)", sql)
    assert float(threshold) == ALERT_MIN_NEGATIVE_SCORE


# --- output an operator can open safely -------------------------------------------------

FORGED = "nice bot\n9999  @admin  POSITIVE  forged row\x1b[2J\u202e"


def test_a_newline_in_a_tweet_cannot_forge_a_row_in_table_output():
    result = reports.Result(["author", "text"], [("ana", FORGED), ("bob", "fine")])
    lines = reports.render(result, "table").splitlines()
    assert len(lines) == 2 + 2 + 1  # header, rule, two rows, count
    assert lines[2].startswith("ana") and "\\n9999" in lines[2]
    assert "\\x1b[2J" in lines[2] and "\\u202e" in lines[2]
    assert not any(c in "".join(lines) for c in "\x1b\u202e\r")


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)",
                                  "\t=1", "\r=1"])  # fmt: skip
def test_csv_neutralises_cells_a_spreadsheet_would_run(text):
    result = reports.Result(["text", "score"], [(text, -0.5)])
    (row,) = list(csv.reader(io.StringIO(reports.render(result, "csv"), newline="")))[1:]
    assert row == ["'" + text, "-0.5"]  # the text is inert; the number stays a number


def test_sql_help_says_it_is_full_duckdb_over_local_files(capsys):
    assert main(["report", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "full DuckDB" in out and "any local file" in out
