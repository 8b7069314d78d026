"""Retention: what the pruner deletes, what it must never delete, and that the runtime runs it."""

from __future__ import annotations

import os
import time

from magpie.lake import LocalLake, raw_x_lake
from magpie.retention import DAY, RetentionPolicy, prune
from magpie.runtime import Runtime

from chalicelib.bus.local import LocalBusStore, LocalEventBus
from chalicelib.egress.guards import SqliteGuardStore
from chalicelib.events import OutgoingEvent, utc_now_iso
from chalicelib.idempotency import PowertoolsIdempotency, prune_expired, sqlite_persistence_layer

POLICY = RetentionPolicy(bus_days=7, lake_days=30, outbox_days=7)


def event(n: int) -> OutgoingEvent:
    return OutgoingEvent("magpie.ingress", "MESSAGE_RECEIVED", {"MessageId": str(n)})


def aged(path, days: float) -> None:
    moment = time.time() - days * DAY
    os.utime(path, (moment, moment))


def test_finished_work_is_pruned_but_never_pending_running_or_parked_work(tmp_path):
    store = LocalBusStore(tmp_path / "bus.sqlite3")
    LocalEventBus(store, account="0", region="eu-west-1").put([event(n) for n in range(4)])
    store.route_new([("t", lambda e: True)])
    done, dead, _running, pending = sorted(store.claim_due(4), key=lambda d: d.event_seq)
    store.complete(done)
    store.fail(dead, "boom", max_attempts=1, delay=0)
    store.postpone(pending, "later", delay=0)

    assert prune(tmp_path, POLICY).counts.get("events", 0) == 0  # nothing is old yet
    pruned = prune(tmp_path, POLICY, now=time.time() + 8 * DAY)

    assert pruned.counts["finished deliveries"] == 1
    assert pruned.counts["events"] == 1
    left = {envelope["detail"]["MessageId"] for _, envelope in store.events_since(0)}
    assert left == {"1", "2", "3"}  # the parked, running and pending deliveries' events
    assert [letter.event_seq for letter in store.dead_letters()] == [dead.event_seq]
    assert store.outstanding() == 2


def test_idempotency_records_and_guard_records_go_when_they_expire(tmp_path):
    path = tmp_path / "idempotency.sqlite3"
    store = PowertoolsIdempotency(lambda: sqlite_persistence_layer(path), ttl_seconds=60)
    store.once("analysis", "m1", lambda: "done")
    assert prune_expired(path) == 0
    assert prune_expired(path, now=time.time() + 61) == 1
    assert store.once("analysis", "m1", lambda: "again") == "again"  # forgotten, as its TTL says

    guards = SqliteGuardStore(tmp_path / "guards.sqlite3")
    guards.mark_intent("MENTION:1", time.time(), int(time.time()) + 10)
    guards.remember_depth("p1", 1, int(time.time()) + 10)
    later = SqliteGuardStore(tmp_path / "guards.sqlite3", clock=lambda: time.time() + 11)
    assert later.prune() == 2


def test_old_lake_files_outbox_replies_media_and_crash_leftovers_are_removed(tmp_path):
    lake = LocalLake(tmp_path / "lake")
    old = {"id": "a", "time": "2020-01-02T03:04:05Z", "detail-type": "X", "detail": {}}
    new = {"id": "b", "time": utc_now_iso(), "detail-type": "X", "detail": {}}
    lake.write(old)
    lake.write(new)
    aged(lake.path_for(old), 31)
    outbox = tmp_path / "outbox"
    (outbox / "media").mkdir(parents=True)
    stale_reply, fresh_reply = outbox / "old.json", outbox / "new.json"
    stale_image, leftover = outbox / "media" / "old-0.jpg", outbox / ".new.json.x.tmp"
    for path in (stale_reply, fresh_reply, stale_image, leftover):
        path.write_text("{}")
    aged(stale_reply, 8)
    aged(stale_image, 8)
    aged(leftover, 0.1)
    media = tmp_path / "media" / "downloads" / "m1.jpg"
    media.parent.mkdir(parents=True)
    media.write_bytes(b"jpeg")
    aged(media, 8)

    pruned = prune(tmp_path, POLICY)

    assert [r["id"] for r in lake.records()] == ["b"]
    assert not (tmp_path / "lake" / "year=2020").exists()
    assert sorted(p.name for p in outbox.rglob("*") if p.is_file()) == ["new.json"]
    assert not media.exists()
    assert pruned.counts["lake files"] == 1
    assert pruned.counts["temporary files"] == 1


def test_old_raw_x_items_are_pruned_as_magpies_events_are(tmp_path):
    raw = raw_x_lake(tmp_path / "lake")
    old = {"id": "r1", "time": "2020-01-02T03:04:05Z", "detail-type": "TWITTER_TWEETED"}
    new = {"id": "r2", "time": utc_now_iso(), "detail-type": "TWITTER_TWEETED"}
    raw.write({**old, "detail": {}})
    raw.write({**new, "detail": {}})
    aged(raw.path_for(old), 31)

    pruned = prune(tmp_path, POLICY)

    assert [r["id"] for r in raw.records()] == ["r2"]
    assert not (tmp_path / "lake" / "x-raw" / "year=2020").exists()
    assert pruned.counts["lake files"] == 1


def test_zero_keeps_the_lake_and_the_outbox_for_ever(tmp_path):
    LocalLake(tmp_path / "lake").write(
        {"id": "a", "time": "2020-01-02T03:04:05Z", "detail-type": "X", "detail": {}}
    )
    aged(LocalLake(tmp_path / "lake").files()[0], 400)
    (tmp_path / "outbox").mkdir()
    reply = tmp_path / "outbox" / "old.json"
    reply.write_text("{}")
    aged(reply, 400)
    prune(tmp_path, RetentionPolicy(bus_days=7, lake_days=0, outbox_days=0))
    assert reply.exists()
    assert len(LocalLake(tmp_path / "lake").records()) == 1


def test_the_runtime_prunes_on_start_and_on_its_schedule(local_env, monkeypatch):
    monkeypatch.setenv("MAGPIE_PRUNE_INTERVAL_MINUTES", "60")
    monkeypatch.setenv("MAGPIE_LAKE_RETENTION_DAYS", "1")
    lake = LocalLake(local_env / "lake")
    old = {"id": "a", "time": "2020-01-02T03:04:05Z", "detail-type": "X", "detail": {}}
    lake.write(old)
    aged(lake.path_for(old), 2)
    runtime = Runtime(local_env)
    assert runtime.pruner.interval_s == 3600
    with runtime:
        deadline = time.monotonic() + 10
        while (local_env / "lake" / "year=2020").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not (local_env / "lake" / "year=2020").exists()
