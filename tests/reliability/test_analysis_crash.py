"""The analysis killed at each point of its ending, then run again: one ending per message.

A child process runs the local runtime on one MESSAGE_RECEIVED with a hook that
`os._exit()`s at a named point (no cleanup, no finally: what `kill -9` leaves behind). A
second child, started with no hook and no command from anyone, finishes the work, and its
analysis would end the other way: where the first run analysed the message, the second
one's text step fails for good; where the first run failed, the second one succeeds. The
message must keep the first ending, with one outcome and the alert of that ending alone.

This is what the 500-message chaos run found (tests/reliability/test_chaos.py): a run that
published MESSAGE_ANALYSED and died before recording it, then a second run that failed on
a fault, left a message answered *and* skipped as analysis_failed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.bus.local import LocalBusStore, LocalEventBus
from chalicelib.events import INGRESS, OutgoingEvent
from tests.conftest import ROOT
from tests.reliability.harness import CRASHED, checked_ledger, run_script

MESSAGE = {
    **json.loads((ROOT / "tests/fixtures/events/MESSAGE_RECEIVED.json").read_text()),
    "Text": "@acme_helper_bot I hate this. Terrible, awful, horrible.",
    "ImageUrls": [],
}
KEY = ("MENTION", MESSAGE["MessageId"])

RUN = """
import os, sys
from pathlib import Path

home, point, analysis = Path(sys.argv[1]), sys.argv[2], sys.argv[3]

def die(*args, **kwargs):
    os._exit(137)

def then_die(original):
    def wrapper(*args, **kwargs):
        original(*args, **kwargs)
        os._exit(137)
    return wrapper

from chalicelib.analysis import ending, steps
from chalicelib.bus.local import LocalBusStore

if analysis == "fails":
    def text_step_fails(message):
        raise RuntimeError("the text step failed for good")
    steps.analyse_text = text_step_fails

if point == "after_claim":  # the ending claimed, nothing published
    ending._publish = die
elif point == "after_publish":  # published, not recorded: the window the chaos run found
    ending._publish = then_die(ending._publish)
elif point == "after_alert_line":  # the alert appended to alerts.jsonl, not yet recorded
    from chalicelib.alert_sinks import LocalAlertSink
    LocalAlertSink.raise_alert = then_die(LocalAlertSink.raise_alert)
elif point == "after_record":  # recorded, the bus delivery not yet acknowledged
    real_complete = LocalBusStore.complete
    def complete(self, delivery):
        if delivery.target == "analysis":
            die()
        return real_complete(self, delivery)
    LocalBusStore.complete = complete

from magpie.runtime import Runtime, configure_environment

configure_environment(home)
with Runtime(home) as runtime:
    idle = runtime.wait_idle(timeout=90)
sys.exit(0 if idle else 3)
"""


def run_runtime(home: Path, point: str, analysis: str) -> int:
    return run_script(RUN, home, point, analysis, LOCAL_SENTIMENT="vader")


def published(store: LocalBusStore, detail_type: str) -> list[dict]:
    return [e["detail"] for _, e in store.events_since(0) if e["detail-type"] == detail_type]


def alert_kinds(home: Path) -> list[str]:
    path = home / "alerts.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line)["Kind"] for line in lines if line]


def crash_then_restart(home: Path, point: str, first: str, second: str) -> LocalBusStore:
    store = LocalBusStore(home / "bus.sqlite3")
    bus = LocalEventBus(store, account="000000000000", region="eu-west-1")
    bus.put([OutgoingEvent(INGRESS, "MESSAGE_RECEIVED", MESSAGE)])
    assert run_runtime(home, point, first) == CRASHED
    assert run_runtime(home, "none", second) == 0  # a plain restart: no replay, no command
    assert store.dead_letters() == []
    assert store.outstanding() == 0
    return store


@pytest.mark.parametrize("point", ["after_claim", "after_publish", "after_record"])
def test_an_analysed_message_killed_at_its_ending_is_never_failed_by_the_next_run(tmp_path, point):
    home = tmp_path / "home"
    store = crash_then_restart(home, point, first="succeeds", second="fails")

    assert published(store, "MESSAGE_ANALYSIS_FAILED") == []
    analysed = published(store, "MESSAGE_ANALYSED")
    assert analysed and all(d == analysed[0] for d in analysed)  # copies of one ending
    assert [d["Reason"] for d in published(store, "REPLY_SKIPPED")] == []
    assert len(published(store, "TWEET_SENT")) == 1
    assert alert_kinds(home) == ["NEGATIVE_MESSAGE"]
    report = checked_ledger(home, [KEY])
    assert report.violations == [] and report.states == {"sent": 1}
    assert report.analysis_endings == {"MESSAGE_ANALYSED": 1}


@pytest.mark.parametrize("point", ["after_claim", "after_publish", "after_record"])
def test_a_failed_analysis_killed_at_its_ending_is_never_answered_by_the_next_run(tmp_path, point):
    home = tmp_path / "home"
    store = crash_then_restart(home, point, first="fails", second="succeeds")

    assert published(store, "MESSAGE_ANALYSED") == []
    failed = published(store, "MESSAGE_ANALYSIS_FAILED")
    assert failed and {d["Reason"] for d in failed} == {
        "RuntimeError: the text step failed for good"
    }
    assert {d["Reason"] for d in published(store, "REPLY_SKIPPED")} == {"analysis_failed"}
    assert published(store, "SEND_TWEET") == [] and published(store, "TWEET_SENT") == []
    assert alert_kinds(home) == ["ANALYSIS_FAILED"]
    report = checked_ledger(home, [KEY])
    assert report.violations == [] and report.states == {"skipped": 1}
    assert report.analysis_endings == {"MESSAGE_ANALYSIS_FAILED": 1}


@pytest.mark.parametrize(
    ("analysis", "alert"), [("succeeds", "NEGATIVE_MESSAGE"), ("fails", "ANALYSIS_FAILED")]
)
def test_a_kill_after_the_alert_line_is_written_leaves_one_alert(tmp_path, analysis, alert):
    """The chaos run's seed 19: killed after alerts.jsonl got the line and before the alert
    step recorded it, the next run took the step over and wrote the line again."""
    home = tmp_path / "home"
    crash_then_restart(home, "after_alert_line", first=analysis, second=analysis)

    assert alert_kinds(home) == [alert]
    report = checked_ledger(home, [KEY])
    assert report.violations == []
