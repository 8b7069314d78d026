"""A second copy of a message arriving while the first is still being analysed waits for it:
no attempt is spent, nothing is parked, the analysis runs once and the message gets one reply.

This used to park the copy as a dead letter (`IdempotencyInProgress` five times within about
three seconds of backoff), a dead letter for a message already answered.
"""

from __future__ import annotations

import json
import threading
import time

from magpie.runtime import Runtime

from chalicelib import backend
from chalicelib.analysis import orchestrator
from chalicelib.events import INGRESS, OutgoingEvent
from tests.conftest import ROOT

MESSAGE = {
    **json.loads((ROOT / "tests/fixtures/events/MESSAGE_RECEIVED.json").read_text()),
    "Text": "@acme_helper_bot tell me a joke please",
    "ImageUrls": [],
}


def test_a_copy_waits_for_the_analysis_in_progress_and_nothing_is_parked(local_env, monkeypatch):
    monkeypatch.setenv("LOCAL_SENTIMENT", "vader")
    monkeypatch.setenv("MAGPIE_BUS_BASE_DELAY_MS", "20")
    monkeypatch.setenv("MAGPIE_BUS_MAX_ATTEMPTS", "3")
    backend.reset()
    analyse = orchestrator.analyse
    runs = []
    first_started = threading.Event()

    def slow_analysis(message, **kwargs):  # longer than every retry of the copy put together
        runs.append(message["MessageId"])
        first_started.set()
        time.sleep(3)
        return analyse(message, **kwargs)

    monkeypatch.setattr(orchestrator, "analyse", slow_analysis)
    bus = backend.event_bus()
    with Runtime(local_env, workers=4) as runtime:
        bus.put([OutgoingEvent(INGRESS, "MESSAGE_RECEIVED", MESSAGE)])
        assert first_started.wait(30)
        bus.put([OutgoingEvent(INGRESS, "MESSAGE_RECEIVED", MESSAGE)])  # a redelivered copy
        assert runtime.wait_idle(timeout=60)
        letters = runtime.store.dead_letters()
        sent = [e for _, e in runtime.store.events_since(0) if e["detail-type"] == "TWEET_SENT"]
    assert letters == []
    assert runs == [MESSAGE["MessageId"]]  # analysed once
    assert len(sent) == 1
    assert len(list((local_env / "outbox").glob("*.json"))) == 1
