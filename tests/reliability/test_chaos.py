"""500 messages under 20% faults on every port, a kill -9 mid-run, a restart: nothing lost.

The runtime under test is `magpie serve` in a child process; this test is the second
process that sends signed deliveries (retrying 5xx and dropped connections, as X does).
For speed: most messages are text-only, the photos come from the bundled media mirror,
LOCAL_SENTIMENT=vader (the lexicon, not the e5 engine), and bus retries start at 20 ms.
REPLY_MAX_WAIT_SECONDS=0 hands every X rate limit straight back to the bus rather than
sleeping on it inside egress.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace

import pytest
from magpie import ledger
from magpie.loadtest import drive, synthetic_deliveries

from chalicelib import faults
from chalicelib.bus.local import LocalBusStore
from tests.reliability.harness import (
    EVERY_PORT,
    SECRET,
    chaos_seed,
    checked_ledger,
    finish_dead_letters,
    injected_ports,
    restart_if_dead,
    served,
    settles,
)


class BackgroundDrive:
    """X's side of a chaos run: signed deliveries (retried as X retries) on their own thread,
    while the test kills and restarts the server."""

    def __init__(self, url: str, deliveries, **options) -> None:
        self.result = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drive, args=(url, deliveries, options))

    def _drive(self, url: str, deliveries, options) -> None:
        try:
            self.result = drive(url, SECRET, deliveries, **options)
        except BaseException as exc:  # re-raised on the test's thread by join()
            self._error = exc

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout=timeout)
        assert not self._thread.is_alive(), "the deliveries did not finish in time"
        if self._error is not None:
            raise AssertionError("X's side of the run failed") from self._error


COUNT = 500
KILL_AFTER_ACKS = 200


@pytest.mark.slow
def test_500_messages_under_faults_and_a_kill_9_end_exactly_once(tmp_path):
    home = tmp_path / "home"
    server = served(
        home,
        MAGPIE_FAULTS=EVERY_PORT,
        MAGPIE_FAULTS_SEED=str(chaos_seed(7)),
        REPLY_MAX_WAIT_SECONDS="0",
    )
    deliveries = synthetic_deliveries(COUNT, seed=chaos_seed(7), image_share=0.1)
    reached_kill_point = threading.Event()
    sender = BackgroundDrive(
        server.url,
        deliveries,
        concurrency=6,
        deadline=time.monotonic() + 400,
        on_ack=lambda n: n >= KILL_AFTER_ACKS and reached_kill_point.set(),
    )

    server.start()
    sender.start()
    try:
        assert reached_kill_point.wait(timeout=300), "the run never got to the kill point"
        busy_at_kill = LocalBusStore(home / "bus.sqlite3").outstanding()
        server.kill9()
        server.start()  # same home, same port: the sender's retries reach the new process
        sender.join(timeout=450)
        assert settles(home)
    finally:
        server.stop()

    driven = sender.result
    assert driven.unacknowledged == []
    assert len(set(driven.acknowledged)) == COUNT
    assert busy_at_kill > 0, "the kill must interrupt work in progress"
    # Every port really failed, and often (a chaos run where nothing failed proves nothing).
    ports = injected_ports(home)
    assert set(ports) == set(faults.PORTS), ports
    assert min(ports.values()) >= 5, ports

    # Only what the injected faults failed 5 times in a row may be parked; the kill parks nothing.
    parked = finish_dead_letters(home, server.env)
    report = checked_ledger(home, set(driven.acknowledged))
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


# --- kill storms: no faults, only crashes, and no command run afterwards ----------------------

STORM_MESSAGES = 200
STORM_TRIALS = 5
RANDOM_KILLS = 3


def storm(home, rng: random.Random) -> tuple[ledger.LedgerReport, list[str]]:
    """200 messages; the first server dies right after writing a reply it has not recorded,
    then `kill -9` lands at random moments (the first soon after that restart, while it is
    still recovering). X's retries of refused or dropped deliveries reach each new process."""
    crash_after = rng.randint(5, 60)
    server = served(home, MAGPIE_TEST_CRASH_AFTER_POSTS=str(crash_after), MAGPIE_BUS_WORKERS="4")
    deliveries = synthetic_deliveries(STORM_MESSAGES, seed=rng.randrange(1 << 30), image_share=0.0)
    events = []
    sender = BackgroundDrive(server.url, deliveries, concurrency=6, deadline=time.monotonic() + 240)

    server.start()
    sender.start()
    try:
        deadline = time.monotonic() + 120
        server.env.pop("MAGPIE_TEST_CRASH_AFTER_POSTS")  # read at start: only the first has it
        while not restart_if_dead(server):  # the crash point fires on its own
            assert time.monotonic() < deadline, "the crash after a post never happened"
            time.sleep(0.05)
        events.append(f"died right after writing reply {crash_after}")
        for n in range(RANDOM_KILLS):
            # The first lands while the restart is still recovering, the others later on.
            time.sleep(rng.uniform(0.2, 2.0) if n == 0 else rng.uniform(0.5, 5.0))
            busy = LocalBusStore(home / "bus.sqlite3").outstanding()
            events.append(f"kill -9 with {busy} deliveries to go")
            server.kill9()
            server.start()
        sender.join(timeout=300)
        assert settles(home)
    finally:
        server.stop()
    driven = sender.result
    assert driven.unacknowledged == []
    return checked_ledger(home, set(driven.acknowledged)), events


@pytest.mark.slow
def test_kill_9_storms_answer_every_acknowledged_message_exactly_once_with_no_command(tmp_path):
    rng = random.Random(chaos_seed(14))
    for trial in range(STORM_TRIALS):
        home = tmp_path / f"trial-{trial}"
        started = time.monotonic()
        report, events = storm(home, rng)
        print(
            f"\ntrial {trial}: {'; '.join(events)}; {time.monotonic() - started:.0f} s\n"
            f"{ledger.format_report(report)}"
        )
        # No replay, no redrive: what the restarts finished by themselves is all there is.
        assert report.violations == [], trial
        assert report.messages == STORM_MESSAGES
        assert report.settled and report.dead_letters == 0
        assert report.states == {"sent": STORM_MESSAGES}, report.states
        assert report.outbox_files == STORM_MESSAGES


@pytest.mark.slow
def test_a_message_that_crashes_the_process_every_time_is_parked_with_its_reason(tmp_path):
    home = tmp_path / "home"
    attempts = 3
    server = served(home, MAGPIE_TEST_POISON="POISON", MAGPIE_BUS_MAX_ATTEMPTS=str(attempts))
    healthy = synthetic_deliveries(10, seed=5, image_share=0.0)
    (poison,) = synthetic_deliveries(1, seed=6, image_share=0.0, id_offset=100, dm_share=0.0)
    poison = replace(poison, body=poison.body.replace(b"tell me", b"POISON tell me", 1))
    assert b"POISON" in poison.body
    crashes = 0
    sender = BackgroundDrive(server.url, [poison, *healthy], deadline=time.monotonic() + 120)
    server.start()
    sender.start()
    try:
        deadline = time.monotonic() + 180
        store = LocalBusStore(home / "bus.sqlite3")
        while sender.is_alive() or store.outstanding():  # a supervisor, restarting it
            assert time.monotonic() < deadline
            crashes += restart_if_dead(server)
            time.sleep(0.1)
    finally:
        server.stop()
    driven = sender.result
    assert driven.unacknowledged == []
    report = ledger.check(home, expected=set(driven.acknowledged))
    letters = LocalBusStore(home / "bus.sqlite3").dead_letters()
    print(f"\n{crashes} crashes\n{ledger.format_report(report)}")
    assert report.violations == []
    assert report.states == {"sent": 10, "parked": 1}
    # One parked analysis per MESSAGE_RECEIVED of the poison: usually one, two when a crash
    # landed after its event was committed and before X had its 200, so X delivered it again
    # (the ledger counts that event as a duplicate absorbed). Each took `attempts` crashes.
    assert letters and {(x.target, x.detail_type) for x in letters} == {
        ("analysis", "MESSAGE_RECEIVED")
    }
    assert all("process running it died" in x.last_error for x in letters)
    assert crashes == attempts * len(letters)
