"""The ledger checker on hand-made evidence: each violation it must find, and a clean run."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from magpie import ledger
from magpie.lake import LakeWriteError, LocalLake

from chalicelib.bus.local import LocalBusStore
from chalicelib.sqlite_file import is_disk_full
from tests.conftest import ROOT

TIME = "2026-07-15T14:03:41Z"


def envelope(detail_type: str, detail: dict, *, ident: str | None = None) -> dict:
    ident = ident or f"{detail_type}-{detail.get('MessageId')}-{detail.get('SentId', '')}"
    source = {
        "MESSAGE_RECEIVED": "magpie.ingress",
        "MESSAGE_ANALYSIS_FAILED": "magpie.analysis",
        "MESSAGE_ANALYSED": "magpie.analysis",
        "SEND_TWEET": "magpie.responders",
    }.get(detail_type, "magpie.egress")
    return {
        "id": ident,
        "detail-type": detail_type,
        "source": source,
        "time": TIME,
        "detail": detail,
    }


def received(message_id: str, kind: str = "MENTION", user: str = "42") -> dict:
    twitter = {"UserId": user, "TweetId": message_id if kind == "MENTION" else None}
    return envelope(
        "MESSAGE_RECEIVED",
        {"MessageId": message_id, "Kind": kind, "Text": "hi", "Author": "a", "Twitter": twitter},
    )


def sent(message_id: str, sent_id: str, kind: str = "MENTION", copy: int = 0) -> dict:
    detail = {"MessageId": message_id, "Kind": kind, "SentId": sent_id, "Text": "hello"}
    return envelope("TWEET_SENT", detail, ident=f"sent-{message_id}-{sent_id}-{copy}")


def skipped(message_id: str, reason: str, kind: str = "MENTION") -> dict:
    detail = {"MessageId": message_id, "Kind": kind, "Reason": reason}
    return envelope("REPLY_SKIPPED", detail, ident=f"skip-{message_id}-{reason}")


def evidence(*envelopes: dict, dead=(), outstanding: int = 0, outbox=()) -> ledger.Evidence:
    return ledger.Evidence(list(envelopes), list(dead), outstanding, list(outbox))


def kinds(report: ledger.LedgerReport) -> list[str]:
    return sorted(v.kind for v in report.violations)


def test_every_message_ending_once_holds_and_redeliveries_are_absorbed():
    report = ledger.check_evidence(
        evidence(
            received("1"),
            received("1") | {"id": "copy-of-1"},  # a redelivered MESSAGE_RECEIVED
            sent("1", "s1"),
            sent("1", "s1", copy=1),  # the outcome published twice, same reply
            received("2"),
            skipped("2", "author_rate_limited"),
            received("3"),
            envelope("TWEET_FAILED", {"MessageId": "3", "Kind": "MENTION", "Reason": "forbidden"}),
        )
    )
    assert report.holds and report.settled
    assert report.states == {"sent": 1, "skipped": 1, "failed": 1}
    assert report.skip_reasons == {"author_rate_limited": 1}
    assert report.duplicate_events == 2
    assert ledger.exit_code(report) == 0


def test_a_message_without_outcome_on_an_idle_bus_is_lost():
    report = ledger.check_evidence(evidence(received("1")))
    assert kinds(report) == ["lost"]
    assert ledger.exit_code(report) == 1


def test_a_message_without_outcome_while_the_bus_is_busy_is_in_flight():
    report = ledger.check_evidence(evidence(received("1"), outstanding=3))
    assert report.holds and not report.settled
    assert report.states == {"in_flight": 1}
    assert ledger.exit_code(report) == 3


def test_a_parked_delivery_keeps_the_message_open_for_replay():
    parked_analysis = (
        "egress.send_tweet",
        envelope("SEND_TWEET", {"MessageId": "1", "Kind": "MENTION"}),
    )
    report = ledger.check_evidence(evidence(received("1"), dead=[parked_analysis]))
    assert report.holds and report.states == {"parked": 1}
    assert ledger.exit_code(report) == 0
    assert ledger.exit_code(report, allow_parked=False) == 3


def test_a_parked_message_received_counts_even_if_it_never_reached_the_lake():
    report = ledger.check_evidence(
        evidence(dead=[("analysis", received("9"))]), expected=[("MENTION", "9")]
    )
    assert report.holds and report.states == {"parked": 1}


def test_two_distinct_replies_are_a_duplicate_and_two_outcomes():
    report = ledger.check_evidence(evidence(received("1"), sent("1", "a"), sent("1", "b")))
    assert kinds(report) == ["duplicate_reply", "multiple_outcomes"]


def test_sent_and_skipped_are_two_outcomes():
    report = ledger.check_evidence(evidence(received("1"), sent("1", "a"), skipped("1", "stale")))
    assert kinds(report) == ["multiple_outcomes"]


def test_a_skip_needs_a_reason():
    report = ledger.check_evidence(evidence(received("1"), skipped("1", "")))
    assert kinds(report) == ["skipped_without_reason"]


def test_analysis_failed_without_an_answer_is_reported():
    failed = envelope("MESSAGE_ANALYSIS_FAILED", {"MessageId": "1", "Kind": "MENTION"})
    report = ledger.check_evidence(evidence(received("1"), failed))
    assert kinds(report) == ["analysis_failed_unanswered"]


def analysed(message_id: str, sentiment: str = "NEUTRAL", copy: int = 0) -> dict:
    detail = {"MessageId": message_id, "Kind": "MENTION", "Analysis": {"TextSentiment": sentiment}}
    return envelope("MESSAGE_ANALYSED", detail, ident=f"analysed-{message_id}-{copy}")


def analysis_failed(message_id: str) -> dict:
    return envelope("MESSAGE_ANALYSIS_FAILED", {"MessageId": message_id, "Kind": "MENTION"})


def test_an_answered_message_whose_analysis_also_failed_has_two_endings_and_two_outcomes():
    """What the chaos run found: one run answered the message, a second run failed it."""
    report = ledger.check_evidence(
        evidence(
            received("1"),
            analysed("1"),
            sent("1", "a"),
            analysis_failed("1"),
            skipped("1", "analysis_failed"),
        )
    )
    assert kinds(report) == ["multiple_analysis_endings", "multiple_outcomes"]
    (violation,) = [v for v in report.violations if v.kind == "multiple_analysis_endings"]
    assert violation.detail == "MESSAGE_ANALYSED, MESSAGE_ANALYSIS_FAILED"
    text = ledger.format_report(report)
    assert (
        "multiple_analysis_endings: MENTION:1 (MESSAGE_ANALYSED, MESSAGE_ANALYSIS_FAILED)" in text
    )
    assert "multiple_outcomes: MENTION:1" in text


def test_two_runs_that_analysed_a_message_differently_are_two_endings():
    report = ledger.check_evidence(
        evidence(received("1"), analysed("1"), analysed("1", "NEGATIVE"), sent("1", "a"))
    )
    assert kinds(report) == ["multiple_analysis_endings"]


def test_copies_of_one_ending_are_one_ending_and_are_counted_by_type():
    report = ledger.check_evidence(
        evidence(
            received("1"),
            analysed("1"),
            analysed("1", copy=1),
            sent("1", "a"),
            received("2"),
            analysis_failed("2"),
            skipped("2", "analysis_failed"),
        )
    )
    assert report.violations == []
    assert report.analysis_endings == {"MESSAGE_ANALYSED": 1, "MESSAGE_ANALYSIS_FAILED": 1}
    assert "analysis endings: MESSAGE_ANALYSED 1, MESSAGE_ANALYSIS_FAILED 1" in (
        ledger.format_report(report)
    )


def test_an_acknowledged_message_never_published_is_reported():
    report = ledger.check_evidence(
        evidence(received("1"), sent("1", "a")), expected=[("MENTION", "1"), ("MENTION", "2")]
    )
    assert [(v.kind, v.message) for v in report.violations] == [
        ("acknowledged_not_received", "MENTION:2")
    ]


def test_a_reply_to_a_message_never_received_is_reported():
    report = ledger.check_evidence(evidence(sent("7", "a")))
    assert kinds(report) == ["reply_without_message"]


def test_a_refused_send_tweet_is_not_an_outcome():
    report = ledger.check_evidence(
        evidence(received("1"), sent("1", "a"), skipped("1", "untrusted_source"))
    )
    assert report.holds and report.refused_commands == 1


def test_an_unrecorded_reply_in_the_outbox_counts_as_a_second_reply():
    outbox = [
        {"sent_id": "a", "kind": "MENTION", "reply_to_tweet_id": "1", "_file": "f1.json"},
        {"sent_id": "b", "kind": "MENTION", "reply_to_tweet_id": "1", "_file": "f2.json"},
    ]
    report = ledger.check_evidence(evidence(received("1"), sent("1", "a"), outbox=outbox))
    assert kinds(report) == ["duplicate_reply"]


def test_outbox_direct_messages_are_tied_to_their_sender_or_reported():
    outbox = [
        {"sent_id": "x", "kind": "DIRECT_MESSAGE", "reply_to_user_id": "42", "_file": "f1.json"},
        {"sent_id": "y", "kind": "DIRECT_MESSAGE", "reply_to_user_id": "77", "_file": "f2.json"},
    ]
    report = ledger.check_evidence(
        evidence(
            received("5", "DIRECT_MESSAGE", user="42"),
            skipped("5", "duplicate_text", "DIRECT_MESSAGE"),
            outbox=outbox,
        )
    )
    assert [(v.kind, v.message) for v in report.violations] == [("unattributed_reply", "f2.json")]
    assert report.states == {"skipped": 1}


def write_home(home: Path, envelopes: list[dict], outbox: list[dict] = ()) -> None:
    lake = LocalLake(home / "lake")
    for item in envelopes:
        lake.write(item)
    (home / "outbox").mkdir(parents=True, exist_ok=True)
    for index, reply in enumerate(outbox):
        (home / "outbox" / f"reply-{index}.json").write_text(json.dumps(reply))


def test_check_reads_the_lake_the_dead_letters_and_the_outbox(tmp_path):
    home = tmp_path / "home"
    write_home(
        home,
        [received("1"), sent("1", "a"), received("2")],
        outbox=[{"sent_id": "a", "kind": "MENTION", "reply_to_tweet_id": "1"}],
    )
    store = LocalBusStore(home / "bus.sqlite3")
    store.append([received("2") | {"id": "bus-2"}])
    store.route_new([("analysis", lambda e: True)])
    (delivery,) = store.claim_due(1)
    assert store.fail(delivery, "boom", max_attempts=1, delay=0)
    report = ledger.check(home, expected=[("MENTION", "1"), ("MENTION", "2")])
    assert report.holds and report.settled
    assert report.states == {"sent": 1, "parked": 1}
    assert (report.dead_letters, report.outbox_files) == (1, 1)


@pytest.mark.slow
def test_magpie_ledger_exit_codes_and_json(tmp_path):
    home = tmp_path / "home"
    write_home(home, [received("1"), sent("1", "a"), received("2")])
    expect = tmp_path / "expected.txt"
    expect.write_text("MENTION 1\nMENTION 2\n")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "magpie.cli", "--home", str(home), "ledger", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    human = run("--expect", str(expect))
    assert human.returncode == 1
    assert "lost: MENTION:2" in human.stdout
    as_json = json.loads(run("--json").stdout)
    assert as_json["violation_counts"] == {"lost": 1}
    assert as_json["states"] == {"lost": 1, "sent": 1}
    write_home(home, [skipped("2", "own_message")])
    assert run().returncode == 0


# --- a lake that ran out of space ------------------------------------------------------------


def test_a_short_write_leaves_no_part_of_the_record(tmp_path, monkeypatch):
    lake = LocalLake(tmp_path / "lake")
    lake.write(received("1"))
    path = lake.path_for(received("1"))
    before = path.read_bytes()
    real_write = os.write
    calls = []

    def disk_fills_up(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, data[:100])  # the kernel took only part of it
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_fills_up)
    with pytest.raises(LakeWriteError) as raised:
        lake.write(received("2"))
    assert is_disk_full(raised.value)
    assert path.read_bytes() == before  # cut back to where the record began
    monkeypatch.setattr(os, "write", real_write)
    lake.write(received("3"))
    assert [r["detail"]["MessageId"] for r in lake.records()] == ["1", "3"]


def test_a_torn_line_is_skipped_counted_and_does_not_swallow_the_next_record(tmp_path):
    home = tmp_path / "home"
    lake = LocalLake(home / "lake")
    lake.write(received("1"))
    path = lake.path_for(received("1"))
    with path.open("ab") as handle:  # what an older writer left on a full disk
        handle.write(json.dumps(sent("1", "s1")).encode()[:40])
    lake.write(sent("1", "s1"))

    report = ledger.check(home)

    assert report.holds and report.states["sent"] == 1
    assert "1 torn lake line(s) skipped" in report.torn_lines
    assert "torn lake line" in ledger.format_report(report)


def test_the_ledger_command_reports_a_torn_lake_instead_of_a_traceback(tmp_path):
    home = tmp_path / "home"
    lake = LocalLake(home / "lake")
    lake.write(received("1"))
    lake.write(sent("1", "s1"))
    with lake.path_for(received("1")).open("ab") as handle:
        handle.write(b'{"id": "torn", "detail-ty')
    result = subprocess.run(
        [sys.executable, "-m", "magpie.cli", "--home", str(home), "ledger"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "1 torn lake line(s) skipped" in result.stdout


class FakeClock:
    """The waiter's clock and sleep: sleeping moves time on, and can let the bus move."""

    def __init__(self, on_sleep=None) -> None:
        self.now = 0.0
        self.on_sleep = on_sleep or (lambda now: None)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.on_sleep(self.now)


def busy_bus(home: Path) -> LocalBusStore:
    store = LocalBusStore(home / "bus.sqlite3")
    store.append([received("1")])
    store.route_new([("analysis", lambda e: True)])
    return store


def test_waiting_for_idle_gives_up_on_a_bus_that_stopped_moving(tmp_path):
    busy_bus(tmp_path)
    clock = FakeClock()
    assert not ledger.wait_until_idle(
        tmp_path, timeout=3600, poll=1, stall=30, clock=clock, sleep=clock.sleep
    )
    assert clock.now == 30  # gave up after the stall, not at the timeout


def test_waiting_for_idle_waits_as_long_as_the_bus_moves(tmp_path):
    store = busy_bus(tmp_path)

    def publish_now_and_then(now: float) -> None:  # a slow machine: an event every 20 s
        if now % 20 == 0 and now < 200:
            store.append([received(str(int(now)))])
            store.route_new([("analysis", lambda e: True)])
        if now == 200:
            for delivery in store.claim_due(100):
                store.complete(delivery)

    clock = FakeClock(publish_now_and_then)
    assert ledger.wait_until_idle(
        tmp_path, timeout=3600, poll=1, stall=30, clock=clock, sleep=clock.sleep
    )
    assert clock.now == 200  # past any stall, but never 30 s without a move


def test_waiting_for_idle_without_a_stall_waits_for_the_timeout(tmp_path):
    busy_bus(tmp_path)
    clock = FakeClock()
    assert not ledger.wait_until_idle(tmp_path, timeout=90, poll=1, clock=clock, sleep=clock.sleep)
    assert clock.now == 90
