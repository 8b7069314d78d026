"""The durable local bus: log, routing, retries, dead letters, archive."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading

import pytest
from magpie.dispatcher import Dispatcher, Target, delivery_priority, pattern_target

from chalicelib.bus import PublishError
from chalicelib.bus.local import LocalBusStore, LocalEventBus
from chalicelib.events import OutgoingEvent
from chalicelib.ports import IdempotencyInProgress
from tests.conftest import ROOT


@pytest.fixture
def store(tmp_path):
    return LocalBusStore(tmp_path / "bus.sqlite3")


def bus(store):
    return LocalEventBus(store, account="000000000000", region="eu-west-1")


def event(n: int, detail_type: str = "MESSAGE_RECEIVED") -> OutgoingEvent:
    return OutgoingEvent(
        "magpie.ingress", detail_type, {"MessageId": str(n)}, time=f"2026-07-15T14:{n:02d}:00Z"
    )


def test_put_commits_envelopes_a_new_store_can_read(store, tmp_path):
    bus(store).put([event(1), event(2, "TWITTER_TWEETED")])
    reopened = LocalBusStore(tmp_path / "bus.sqlite3")
    envelopes = [env for _, env in reopened.events_since(0)]
    assert [e["detail-type"] for e in envelopes] == ["MESSAGE_RECEIVED", "TWITTER_TWEETED"]
    first = envelopes[0]
    assert set(first) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert first["detail"] == {"MessageId": "1"}
    assert first["region"] == "eu-west-1"


def test_routing_creates_one_delivery_per_matching_target_and_is_idempotent(store):
    bus(store).put([event(1), event(2, "TWITTER_TWEETED")])
    targets = [
        ("analysis", lambda e: e["detail-type"] == "MESSAGE_RECEIVED"),
        ("lake", lambda e: True),
    ]
    assert store.route_new(targets) == 2
    assert store.route_new(targets) == 0
    due = store.claim_due(10)
    assert sorted((d.target, d.envelope["detail-type"]) for d in due) == [
        ("analysis", "MESSAGE_RECEIVED"),
        ("lake", "MESSAGE_RECEIVED"),
        ("lake", "TWITTER_TWEETED"),
    ]
    assert store.claim_due(10) == []  # claimed deliveries are not handed out twice


CLAIM_AND_DIE = """
import os, sys
from pathlib import Path
from chalicelib.bus.local import LocalBusStore
LocalBusStore(Path(sys.argv[1])).claim_due(10)
os._exit(9)
"""


def claim_in_a_process_that_dies(path) -> None:
    """Another process claims every due delivery and is killed before finishing any."""
    child = subprocess.run([sys.executable, "-c", CLAIM_AND_DIE, str(path)], cwd=ROOT, check=False)
    assert child.returncode == 9


def test_running_deliveries_of_a_dead_process_are_reclaimed_with_the_attempt_counted(
    store, tmp_path
):
    bus(store).put([event(1)])
    store.route_new([("t", lambda e: True)])
    claim_in_a_process_that_dies(tmp_path / "bus.sqlite3")
    restarted = LocalBusStore(tmp_path / "bus.sqlite3")
    assert restarted.reclaim_orphans(max_attempts=5) == (1, 0)
    (again,) = restarted.claim_due(1)
    assert (again.attempts, again.crashes) == (1, 1)  # the attempt that died counts


def test_running_deliveries_of_a_live_process_are_left_alone(store, tmp_path):
    bus(store).put([event(1)])
    store.route_new([("t", lambda e: True)])
    assert len(store.claim_due(1)) == 1  # this process is alive and still working on it
    other = LocalBusStore(tmp_path / "bus.sqlite3")
    assert other.reclaim_orphans(max_attempts=5) == (0, 0)
    assert other.claim_due(1) == []


def test_a_delivery_that_kills_its_process_every_time_is_parked_with_the_reason(store, tmp_path):
    bus(store).put([event(1)])
    store.route_new([("analysis", lambda e: True)])
    for _ in range(3):
        claim_in_a_process_that_dies(tmp_path / "bus.sqlite3")
        store.reclaim_orphans(max_attempts=3)
    (letter,) = store.dead_letters()
    assert (letter.target, letter.attempts) == ("analysis", 3)
    assert "process running it died" in letter.last_error
    assert store.outstanding() == 0


def test_suspects_are_claimed_apart_from_the_rest(store, tmp_path):
    bus(store).put([event(1)])
    store.route_new([("t", lambda e: True)])
    claim_in_a_process_that_dies(tmp_path / "bus.sqlite3")
    store.reclaim_orphans(max_attempts=5)
    bus(store).put([event(2)])
    store.route_new([("t", lambda e: True)])
    (clean,) = store.claim_due(10, suspects=False)
    (suspect,) = store.claim_due(10, suspects=True)
    assert (clean.envelope["detail"]["MessageId"], suspect.envelope["detail"]["MessageId"]) == (
        "2",
        "1",
    )


def test_work_closest_to_done_is_claimed_first(store):
    bus(store).put([event(1), event(2, "MESSAGE_ANALYSED"), event(3, "SEND_TWEET")])
    store.route_new([("t", lambda e: True)], priority=delivery_priority)
    order = [d.envelope["detail-type"] for d in store.claim_due(10)]
    assert order == ["SEND_TWEET", "MESSAGE_ANALYSED", "MESSAGE_RECEIVED"]


def run_until_idle(store, targets, **kwargs) -> Dispatcher:
    dispatcher = Dispatcher(store, targets, base_delay=0.01, poll_interval=0.02, **kwargs)
    dispatcher.start()
    try:
        assert dispatcher.wait_idle(timeout=20, settle=0.05)
    finally:
        dispatcher.stop()
    return dispatcher


def test_dispatcher_delivers_to_chalice_style_handlers_with_a_context(store):
    seen = []

    def handler(envelope, context):
        seen.append((envelope["detail"]["MessageId"], context.get_remaining_time_in_millis() > 0))

    bus(store).put([event(1), event(2)])
    run_until_idle(store, [pattern_target("h", {"detail-type": ["MESSAGE_RECEIVED"]}, handler)])
    assert sorted(seen) == [("1", True), ("2", True)]


def test_failing_target_is_retried_then_succeeds(store):
    attempts = []

    def flaky(envelope, context):
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("transient")

    bus(store).put([event(1)])
    run_until_idle(store, [Target("flaky", lambda e: True, flaky)], max_attempts=5)
    assert len(attempts) == 3
    assert store.dead_letters() == []


def test_target_that_keeps_failing_is_parked_and_can_be_redriven(store):
    broken = threading.Event()
    broken.set()
    delivered = []

    def handler(envelope, context):
        if broken.is_set():
            raise ValueError("provider down")
        delivered.append(envelope["id"])

    others = []
    bus(store).put([event(1)])
    targets = [
        Target("fragile", lambda e: True, handler),
        Target("healthy", lambda e: True, lambda e, c: others.append(e["id"])),
    ]
    run_until_idle(store, targets, max_attempts=3)
    (letter,) = store.dead_letters()
    assert (letter.target, letter.attempts, letter.detail_type) == (
        "fragile",
        3,
        "MESSAGE_RECEIVED",
    )
    assert "provider down" in letter.last_error
    assert len(others) == 1  # one target failing does not hold back the others

    broken.clear()
    assert store.redrive_dead_letters() == 1
    run_until_idle(store, targets, max_attempts=3)
    assert store.dead_letters() == []
    assert len(delivered) == 1
    assert len(others) == 1  # the healthy target is not redelivered


def test_archive_returns_original_events_in_a_window(store):
    bus(store).put([event(1), event(5, "TWEET_SENT"), event(9)])
    window = store.archived("2026-07-15T14:02:00Z", "2026-07-15T14:10:00Z")
    assert [e["detail"]["MessageId"] for e in window] == ["5", "9"]
    only = store.archived("2026-07-15T14:00:00Z", "2026-07-15T15:00:00Z", ["TWEET_SENT"])
    assert [e["detail-type"] for e in only] == ["TWEET_SENT"]


def test_waiting_on_another_live_worker_does_not_spend_attempts(store):
    calls = []

    def busy_then_done(envelope, context):
        calls.append(1)
        if len(calls) <= 6:
            raise IdempotencyInProgress("held by another worker")

    bus(store).put([event(1)])
    run_until_idle(store, [Target("t", lambda e: True, busy_then_done)], max_attempts=2)
    assert len(calls) == 7
    assert store.dead_letters() == []


def test_a_full_disk_is_waited_out_without_parking(store):
    calls = []

    def full_then_done(envelope, context):
        calls.append(1)
        if len(calls) <= 3:
            raise OSError(28, "No space left on device")

    bus(store).put([event(1)])
    dispatcher = Dispatcher(
        store, [Target("t", lambda e: True, full_then_done)], max_attempts=1, poll_interval=0.02
    )
    dispatcher._disk.base = 0.01  # the first retries come quickly in a test
    dispatcher.start()
    try:
        assert dispatcher.wait_idle(timeout=20, settle=0.05)
    finally:
        dispatcher.stop()
    assert len(calls) == 4
    assert store.dead_letters() == []


def test_an_outcome_the_bus_cannot_record_is_kept_and_recorded_later(store, monkeypatch):
    complete = store.complete
    refusals = []

    def full_disk_then_complete(delivery):
        if len(refusals) < 3:
            refusals.append(1)
            raise sqlite3.OperationalError("database or disk is full")
        complete(delivery)

    monkeypatch.setattr(store, "complete", full_disk_then_complete)
    delivered = []
    bus(store).put([event(1)])
    dispatcher = run_until_idle(
        store, [Target("t", lambda e: True, lambda e, c: delivered.append(e["id"]))]
    )
    assert len(refusals) == 3
    assert len(delivered) == 1  # recorded later, not redelivered
    assert store.outstanding() == 0
    assert dispatcher._unrecorded == []


def test_a_bus_that_cannot_commit_refuses_the_put(store, monkeypatch):
    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "append", full)
    with pytest.raises(PublishError):
        bus(store).put([event(1)])


def test_a_failure_whose_record_also_fails_leaves_no_row_running(store, monkeypatch):
    """The handler fails, and recording that failure fails too (a full disk): the worker
    survives, the failure is recorded once the bus takes it, and the retry then succeeds."""
    fail = store.fail
    refusals = []

    def full_disk_then_fail(*args, **kwargs):
        if len(refusals) < 2:
            refusals.append(1)
            raise sqlite3.OperationalError("database or disk is full")
        return fail(*args, **kwargs)

    monkeypatch.setattr(store, "fail", full_disk_then_fail)
    calls = []

    def fails_once(envelope, context):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("provider down")

    bus(store).put([event(1)])
    run_until_idle(store, [Target("t", lambda e: True, fails_once)], max_attempts=3)
    assert len(refusals) == 2 and len(calls) == 2
    assert store.outstanding() == 0 and store.dead_letters() == []
