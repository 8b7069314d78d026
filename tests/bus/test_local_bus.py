"""The durable local bus: log, routing, retries, dead letters, archive."""

from __future__ import annotations

import threading

import pytest
from magpie.dispatcher import Dispatcher, Target, pattern_target

from chalicelib.bus.local import LocalBusStore, LocalEventBus
from chalicelib.events import OutgoingEvent


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


def test_running_deliveries_are_recovered_after_a_crash(store, tmp_path):
    bus(store).put([event(1)])
    store.route_new([("t", lambda e: True)])
    (claimed,) = store.claim_due(1)
    # The process dies here; a new dispatcher starts on the same file.
    restarted = LocalBusStore(tmp_path / "bus.sqlite3")
    assert restarted.recover_running() == 1
    (again,) = restarted.claim_due(1)
    assert again.envelope["id"] == claimed.envelope["id"]


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
