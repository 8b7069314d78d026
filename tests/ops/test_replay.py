"""`magpie replay --from/--to`: archived events go round the local bus again, and idempotency
keeps a replay from repeating an analysis or a reply."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from magpie.cli import main
from magpie.client import post_signed
from magpie.replay import ReplayError, replay_copy, replay_local
from magpie.runtime import Runtime
from magpie.server import BackgroundServer

from chalicelib import backend
from tests.conftest import SAMPLES, SECRET
from tests.ops.lakedata import history


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def originals(store) -> Counter[str]:
    return Counter(e["detail-type"] for _, e in store.events_since(0) if not e.get("replay-name"))


def outbox_files(home) -> list:
    return sorted((home / "outbox").glob("*.json"))


@pytest.fixture
def replied(local_env, monkeypatch):
    """Two messages taken through the whole local runtime to a reply in the outbox."""
    monkeypatch.setenv("LOCAL_SENTIMENT", "vader")  # the small model: this test is about replay
    # One idempotent section at a time (one worker; each webhook settled before the next):
    # Powertools' persistence layer is shared between threads and namespaces
    # (chalicelib/idempotency.py), which can leave a finished key INPROGRESS when sections
    # run in parallel. That race is reported separately; this test is about replay.
    monkeypatch.setenv("MAGPIE_BUS_WORKERS", "1")
    backend.reset()
    start = iso(datetime.now(UTC) - timedelta(seconds=1))
    with Runtime(local_env) as runtime, BackgroundServer() as server:
        for sample in ("mention-plain.json", "mention-negative.json"):
            status, _ = post_signed(server.url, (SAMPLES / sample).read_bytes(), SECRET)
            assert status == 200
            assert runtime.wait_idle(timeout=120)
        assert runtime.store.dead_letters() == []
    end = iso(datetime.now(UTC) + timedelta(seconds=2))
    assert len(outbox_files(local_env)) == 2
    return local_env, start, end


@pytest.mark.slow
def test_replaying_everything_repeats_no_analysis_and_no_reply(replied, capsys):
    home, start, end = replied
    store = backend.local_bus_store()
    before = originals(store)
    assert before["TWEET_SENT"] == 2 and before["MESSAGE_ANALYSED"] == 2
    archived = store.archived(start, end)

    assert main(["--home", str(home), "replay", "--from", start, "--to", end]) == 0
    out = capsys.readouterr().out
    assert f"{len(archived)} event(s) from {start} to {end}" in out

    copies = [e for _, e in store.events_since(0) if e.get("replay-name")]
    assert sorted(e["detail-type"] for e in copies) == sorted(e["detail-type"] for e in archived)
    assert {e["id"] for e in copies}.isdisjoint({e["id"] for e in archived})
    archived_ids = {e["id"] for e in store.archived(start, end)}
    assert archived_ids.isdisjoint({e["id"] for e in copies})  # copies are not originals
    after = originals(store)
    # Responders may issue the command again (they are not keyed per message); egress
    # answers it from its ledger, so nothing past SEND_TWEET happens twice.
    assert set(after - before) <= {"SEND_TWEET"}
    assert after["MESSAGE_ANALYSED"] == 2  # analysis is idempotent per message
    assert after["TWEET_SENT"] == 2  # ...and so is egress: no second reply
    assert len(outbox_files(home)) == 2
    assert store.dead_letters() == []


@pytest.mark.slow
def test_replaying_one_detail_type_only(replied, capsys):
    home, start, end = replied
    store = backend.local_bus_store()
    args = ["--home", str(home), "replay", "--from", start, "--to", end]
    assert main([*args, "--detail-type", "MESSAGE_RECEIVED", "--name", "received-only"]) == 0
    assert "replay received-only: 2 event(s)" in capsys.readouterr().out
    copies = [e for _, e in store.events_since(0) if e.get("replay-name") == "received-only"]
    assert [e["detail-type"] for e in copies] == ["MESSAGE_RECEIVED", "MESSAGE_RECEIVED"]
    assert originals(store)["MESSAGE_ANALYSED"] == 2
    assert len(outbox_files(home)) == 2

    # A replay name is used once, as on EventBridge.
    assert main([*args, "--detail-type", "MESSAGE_RECEIVED", "--name", "received-only"]) == 2
    assert "already run" in capsys.readouterr().err


def test_replay_copies_are_marked_and_never_replayed_again(local_env):
    store = backend.local_bus_store()
    store.append(history())
    first = replay_local(store, "2026-07-15T00:00:00Z", "2026-07-16T00:00:00Z", name="r1")
    assert (first.name, first.events) == ("r1", 9)
    second = replay_local(store, "2026-07-15T00:00:00Z", "2026-07-16T00:00:00Z", name="r2")
    assert second.events == 9  # the originals again, not r1's copies
    with pytest.raises(ReplayError):
        replay_local(store, "2026-07-15T00:00:00Z", "2026-07-16T00:00:00Z", name="r1")
    original = history()[0]
    copy = replay_copy(original, "r1")
    assert copy["replay-name"] == "r1" and copy["id"] != original["id"]
    same = {k: v for k, v in copy.items() if k not in ("id", "replay-name")}
    assert same == {k: v for k, v in original.items() if k != "id"}


def test_replay_without_a_window_is_refused(local_env, capsys):
    assert main(["--home", str(local_env), "replay", "--from", "2h"]) == 2
    assert "--from and --to" in capsys.readouterr().err
    args = ["--home", str(local_env), "replay", "--dead-letters", "--from", "2h", "--to", "now"]
    assert main(args) == 2


def test_replay_with_no_dispatch_only_publishes(local_env, capsys):
    store = backend.local_bus_store()
    store.append(history())
    args = ["--home", str(local_env), "replay", "--from", "2026-07-16", "--to", "2026-07-17"]
    assert main([*args, "--detail-type", "REPLY_SKIPPED", "--no-dispatch"]) == 0
    assert ": 1 event(s)" in capsys.readouterr().out
    assert store.outstanding() > 0  # routed by whichever runtime runs next
    copy = json.loads(json.dumps(store.events_since(len(history()))[0][1]))
    assert copy["detail-type"] == "REPLY_SKIPPED" and copy["replay-name"].startswith("magpie-")


def test_dead_letters_are_still_retried(local_env, capsys):
    """`replay --dead-letters` keeps working beside the archive replay."""
    from magpie.lake import LocalLake

    store = backend.local_bus_store()
    event = history()[0]
    store.append([event])
    store.route_new([("lake", lambda envelope: True)])
    (delivery,) = store.claim_due(10)
    assert store.fail(delivery, "disk full", max_attempts=1, delay=0)
    assert main(["--home", str(local_env), "replay", "--dead-letters"]) == 0
    out = capsys.readouterr().out
    assert "redriving 1 dead letter(s)" in out and "0 dead letter(s) left" in out
    assert [r["id"] for r in LocalLake(local_env / "lake").records()] == [event["id"]]
