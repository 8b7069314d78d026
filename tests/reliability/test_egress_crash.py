"""Egress killed at each of its steps, then restarted: the message gets exactly one reply.

A child process runs the local runtime on one SEND_TWEET with a fault hook that
`os._exit()`s at a named step (no cleanup, no finally: what `kill -9` leaves behind). A
second child, started with no hook and no command from anyone, finishes the work. The
window that used to answer twice is `after_post`: the reply is in the outbox, nothing
records it, and the in-progress key's process is gone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.bus.local import LocalBusStore, LocalEventBus
from chalicelib.events import RESPONDERS, OutgoingEvent
from tests.conftest import ROOT
from tests.reliability.harness import CRASHED, run_script

COMMAND = {
    **json.loads((ROOT / "tests/fixtures/events/SEND_TWEET.json").read_text()),
    "ImageKey": None,
    "ImageKeys": [],
}
COMMAND = {k: v for k, v in COMMAND.items() if v is not None}

RUN = """
import os, sys
from pathlib import Path

home, step = Path(sys.argv[1]), sys.argv[2]

def die(*args, **kwargs):
    os._exit(137)

def then_die(original):
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        os._exit(137)
    return wrapper

from chalicelib.bus.local import LocalBusStore
from chalicelib.egress import guards, outbox, send

if step == "before_intent":
    guards.SqliteGuardStore.mark_intent = die
elif step == "after_intent":
    guards.SqliteGuardStore.mark_intent = then_die(guards.SqliteGuardStore.mark_intent)
elif step == "before_rename":
    real_replace = os.replace
    def replace(src, dst):
        return die() if str(dst).endswith(".json") else real_replace(src, dst)
    outbox.os.replace = replace
elif step == "after_post":
    outbox.DryRunOutbox.post = then_die(outbox.DryRunOutbox.post)
elif step == "after_record":
    send._publish_outcome = die
elif step == "after_outcome":
    real_complete = LocalBusStore.complete
    def complete(self, delivery):
        return die() if delivery.target.startswith("egress.") else real_complete(self, delivery)
    LocalBusStore.complete = complete

from magpie.runtime import Runtime, configure_environment

configure_environment(home)
with Runtime(home) as runtime:
    idle = runtime.wait_idle(timeout=60)
sys.exit(0 if idle else 3)
"""


def run_runtime(home: Path, step: str) -> int:
    return run_script(RUN, home, step)


STEPS = ["before_intent", "after_intent", "before_rename", "after_post", "after_record"]
STEPS += ["after_outcome"]


@pytest.mark.parametrize("step", STEPS)
def test_a_crash_at_any_step_of_egress_ends_in_one_reply(tmp_path, step):
    home = tmp_path / "home"
    store = LocalBusStore(home / "bus.sqlite3")
    bus = LocalEventBus(store, account="000000000000", region="eu-west-1")
    bus.put([OutgoingEvent(RESPONDERS, "SEND_TWEET", COMMAND)])

    assert run_runtime(home, step) == CRASHED
    assert run_runtime(home, "none") == 0  # a plain restart: no replay, no command

    replies = sorted((home / "outbox").glob("*.json"))
    assert len(replies) == 1, [p.name for p in replies]
    sent = [e["detail"] for _, e in store.events_since(0) if e["detail-type"] == "TWEET_SENT"]
    assert {d["SentId"] for d in sent} == {json.loads(replies[0].read_text())["sent_id"]}
    assert store.dead_letters() == []
    assert store.outstanding() == 0


def test_a_crash_after_posting_then_another_answer_for_the_message_posts_nothing_more(tmp_path):
    """The message's analysis ran again after the crash and the responders chose another
    joke: a second command with other words for a message whose reply is already out."""
    home = tmp_path / "home"
    store = LocalBusStore(home / "bus.sqlite3")
    bus = LocalEventBus(store, account="000000000000", region="eu-west-1")
    bus.put([OutgoingEvent(RESPONDERS, "SEND_TWEET", COMMAND)])
    assert run_runtime(home, "after_post") == CRASHED
    bus.put([OutgoingEvent(RESPONDERS, "SEND_TWEET", {**COMMAND, "Text": "Another joke."})])

    assert run_runtime(home, "none") == 0

    (reply,) = (home / "outbox").glob("*.json")
    sent = [e["detail"] for _, e in store.events_since(0) if e["detail-type"] == "TWEET_SENT"]
    assert {d["SentId"] for d in sent} == {json.loads(reply.read_text())["sent_id"]}
    assert store.dead_letters() == []
