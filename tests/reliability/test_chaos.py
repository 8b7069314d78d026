"""500 messages under 20% faults on every port, a kill -9 mid-run, a restart: nothing lost.

The runtime under test is `magpie serve` in a child process; this test is the second
process that sends signed deliveries (retrying 5xx and dropped connections, as X does).
For speed: most messages are text-only, the photos come from the bundled media mirror,
LOCAL_SENTIMENT=vader (the lexicon, not the e5 engine), and bus retries start at 20 ms.
REPLY_MAX_WAIT_SECONDS=0 hands every X rate limit straight back to the bus rather than
sleeping on it inside egress.
"""

from __future__ import annotations

import threading
import time

import pytest
from magpie import ledger
from magpie.loadtest import drive, synthetic_deliveries

from chalicelib import faults
from chalicelib.bus.local import LocalBusStore
from tests.reliability.harness import (
    EVERY_PORT,
    IN_PROGRESS_EXPIRY_S,
    SECRET,
    finish_dead_letters,
    injected_ports,
    served,
)

COUNT = 500
KILL_AFTER_ACKS = 200
SEED = "7"


@pytest.mark.slow
def test_500_messages_under_faults_and_a_kill_9_end_exactly_once(tmp_path):
    home = tmp_path / "home"
    server = served(
        home, MAGPIE_FAULTS=EVERY_PORT, MAGPIE_FAULTS_SEED=SEED, REPLY_MAX_WAIT_SECONDS="0"
    )
    deliveries = synthetic_deliveries(COUNT, seed=7, image_share=0.1)
    reached_kill_point = threading.Event()
    outcome: dict = {}

    def send_all() -> None:
        outcome["drive"] = drive(
            server.url,
            SECRET,
            deliveries,
            concurrency=6,
            deadline=time.monotonic() + 400,
            on_ack=lambda n: n >= KILL_AFTER_ACKS and reached_kill_point.set(),
        )

    server.start()
    sender = threading.Thread(target=send_all)
    sender.start()
    try:
        assert reached_kill_point.wait(timeout=300), "the run never got to the kill point"
        busy_at_kill = LocalBusStore(home / "bus.sqlite3").outstanding()
        server.kill9()
        killed_at = time.monotonic()
        server.start()  # same home, same port: the sender's retries reach the new process
        sender.join(timeout=450)
        assert not sender.is_alive()
        assert ledger.wait_until_idle(home, timeout=400)
    finally:
        server.stop()

    driven = outcome["drive"]
    assert driven.unacknowledged == []
    assert len(set(driven.acknowledged)) == COUNT
    assert busy_at_kill > 0, "the kill must interrupt work in progress"
    # Every port really failed, and often (a chaos run where nothing failed proves nothing).
    ports = injected_ports(home)
    assert set(ports) == set(faults.PORTS), ports
    assert min(ports.values()) >= 5, ports

    parked = finish_dead_letters(home, server.env, not_before=killed_at + IN_PROGRESS_EXPIRY_S + 5)
    report = ledger.check(home, expected=set(driven.acknowledged))
    print(
        f"\nchaos: faults injected {ports}; deliveries refused with 503 or dropped: "
        f"{sum(n for s, n in driven.statuses().items() if s != 200)}; "
        f"dead letters before each replay {parked}\n{ledger.format_report(report)}"
    )
    assert report.violations == []
    assert report.messages == COUNT
    assert report.settled and report.states["parked"] == 0
    # Unique authors and fresh messages, so no loop guard applies: a skip can only be a
    # message whose analysis failed for good (its reason is in the report), and rare.
    assert set(report.states) <= {"sent", "skipped"}, report.states
    assert report.states["sent"] >= 0.98 * COUNT, report.states
    assert report.outbox_files == report.states["sent"]
