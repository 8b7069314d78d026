"""A duplicate storm: every delivery three times at once, then an archive replay of the whole
window (`magpie replay --from --to`): still exactly one reply per message.

The stack runs in this process (webhook over HTTP on 127.0.0.1, the local bus and every
handler); the replay runs as the operator would run it, in its own process.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from magpie import ledger
from magpie.loadtest import MEDIA_MIRROR, drive, synthetic_deliveries
from magpie.runtime import Runtime
from magpie.server import BackgroundServer

from chalicelib import backend
from tests.conftest import BOT_ID, ROOT, SECRET
from tests.reliability.harness import chaos_seed, checked_ledger

MESSAGES = 60


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def bus_types(store) -> Counter:
    return Counter(envelope["detail-type"] for _, envelope in store.events_since(0))


@pytest.mark.slow
def test_three_copies_of_everything_then_a_replay_of_the_window_reply_once(local_env, monkeypatch):
    monkeypatch.setenv("MAGPIE_MEDIA_MIRROR", str(MEDIA_MIRROR))
    monkeypatch.setenv("LOCAL_SENTIMENT", "vader")
    monkeypatch.setenv("MAGPIE_BUS_BASE_DELAY_MS", "20")
    backend.reset()
    deliveries = synthetic_deliveries(
        MESSAGES, seed=chaos_seed(3), image_share=0.1, bot_user_id=BOT_ID
    )
    start = datetime.now(UTC) - timedelta(seconds=1)
    with Runtime(local_env) as runtime, BackgroundServer() as server:
        storm = drive(
            server.url,
            SECRET,
            deliveries,
            concurrency=6,
            copies=3,
            deadline=time.monotonic() + 120,
        )
        assert runtime.wait_idle(timeout=180)
        store = runtime.store
        before_replay = bus_types(store)
    end = datetime.now(UTC) + timedelta(seconds=1)

    assert storm.unacknowledged == [] and len(storm.acknowledged) == 3 * MESSAGES
    # Each message entered the system once, however many copies arrived at once.
    assert before_replay["MESSAGE_RECEIVED"] == MESSAGES
    # Every copy's raw event is recorded (a copy answered 503 and retried, once more).
    assert before_replay["TWITTER_TWEETED"] + before_replay["TWITTER_DM_RECEIVED"] >= 3 * MESSAGES

    replay = subprocess.run(
        [sys.executable, "-m", "magpie.cli", "--home", str(local_env), "replay",
         "--from", iso(start), "--to", iso(end)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stdout + replay.stderr
    after_replay = bus_types(backend.local_bus_store())
    # The replay really went through the pipeline again: every original event was copied,
    # and the responders, handed the analysed messages again, commanded replies again...
    assert after_replay["MESSAGE_RECEIVED"] == 2 * MESSAGES
    assert after_replay["SEND_TWEET"] > before_replay["SEND_TWEET"]
    # ...but egress answered none of them a second time.
    report = checked_ledger(local_env, set(storm.acknowledged))
    print(
        f"\nstorm: {len(storm.acknowledged)} deliveries acknowledged "
        f"(HTTP {dict(storm.statuses())}); bus before the replay {dict(before_replay)}; "
        f"after {dict(after_replay)}\n{ledger.format_report(report)}"
    )
    assert report.violations == []
    assert report.states == Counter({"sent": MESSAGES})
    assert report.outbox_files == MESSAGES
    assert report.settled and report.dead_letters == 0
