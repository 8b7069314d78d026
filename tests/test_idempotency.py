"""Powertools idempotency over the local SQLite persistence layer (and DynamoDB in moto)."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time

import pytest
from magpie.moto_world import create_idempotency_table
from moto import mock_aws

from chalicelib.idempotency import (
    PowertoolsIdempotency,
    dynamodb_persistence_layer,
    sqlite_persistence_layer,
)
from chalicelib.ports import IdempotencyInProgress, IdempotencyUnavailable
from tests.conftest import ROOT


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request, tmp_path, aws_credentials):
    if request.param == "sqlite":
        yield PowertoolsIdempotency(lambda: sqlite_persistence_layer(tmp_path / "idem.sqlite3"))
        return
    with mock_aws():
        create_idempotency_table("idem")
        yield PowertoolsIdempotency(lambda: dynamodb_persistence_layer("idem"))


def test_second_call_returns_the_first_result_without_running(store):
    runs = []
    assert store.once("reply", "m1", lambda: runs.append(1) or {"sent": "a"}) == {"sent": "a"}
    assert store.once("reply", "m1", lambda: runs.append(2) or {"sent": "b"}) == {"sent": "a"}
    assert runs == [1]


def test_keys_and_namespaces_are_independent(store):
    assert store.once("reply", "m1", lambda: 1) == 1
    assert store.once("reply", "m2", lambda: 2) == 2
    assert store.once("received", "m1", lambda: 3) == 3


def test_a_failure_releases_the_key_for_a_retry(store):
    def boom():
        raise RuntimeError("X is down")

    with pytest.raises(RuntimeError):
        store.once("reply", "m1", boom)
    assert store.once("reply", "m1", lambda: "sent") == "sent"


def test_concurrent_duplicate_sees_in_progress(store):
    def inner():
        with pytest.raises(IdempotencyInProgress):
            store.once("reply", "m1", lambda: "second")
        return "first"

    assert store.once("reply", "m1", inner) == "first"


HOLD_KEY = """
import os, sys, time
from pathlib import Path
from chalicelib.idempotency import PowertoolsIdempotency, sqlite_persistence_layer
store = PowertoolsIdempotency(
    lambda: sqlite_persistence_layer(Path(sys.argv[1])), in_progress_ms=int(sys.argv[3])
)
def work():
    print("holding", flush=True)
    if sys.argv[2] == "die":
        os._exit(9)
    time.sleep(60)
store.once("reply", "m1", work)
"""


@contextlib.contextmanager
def key_held_by_another_process(path, *, then: str, in_progress_ms: int = 120_000):
    """Another process takes key reply/m1 and then dies (`die`) or keeps working (`work`)."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_KEY, str(path), then, str(in_progress_ms)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "holding"
        if then == "die":
            child.wait(timeout=30)
        yield child
    finally:
        child.kill()
        child.wait(timeout=30)


def test_a_key_held_by_a_process_that_died_is_taken_over_at_once(tmp_path):
    path = tmp_path / "idem.sqlite3"
    with key_held_by_another_process(path, then="die"):
        restarted = PowertoolsIdempotency(lambda: sqlite_persistence_layer(path))
        assert restarted.once("reply", "m1", lambda: "after restart") == "after restart"


def test_a_key_held_by_a_live_process_is_in_progress_until_it_dies(tmp_path):
    path = tmp_path / "idem.sqlite3"
    store = PowertoolsIdempotency(lambda: sqlite_persistence_layer(path))
    with key_held_by_another_process(path, then="work") as child:
        with pytest.raises(IdempotencyInProgress):
            store.once("reply", "m1", lambda: "too early")
        child.kill()
        child.wait(timeout=30)
        assert store.once("reply", "m1", lambda: "now") == "now"


def test_a_live_holder_past_the_in_progress_window_loses_the_key(tmp_path):
    path = tmp_path / "idem.sqlite3"
    store = PowertoolsIdempotency(lambda: sqlite_persistence_layer(path))
    with key_held_by_another_process(path, then="work", in_progress_ms=300):
        time.sleep(0.35)
        assert store.once("reply", "m1", lambda: "taken over") == "taken over"


def test_a_key_this_process_no_longer_works_on_is_taken_at_once(tmp_path):
    """The completion could not be saved (say, a full disk): the record stays in progress
    under this live process, but nothing runs it any more."""
    path = tmp_path / "idem.sqlite3"
    store = PowertoolsIdempotency(lambda: sqlite_persistence_layer(path))

    class Crash(BaseException):
        """Leaves the section without Powertools cleaning up, as a failed save does."""

    with pytest.raises(Crash):
        store.once("reply", "m1", lambda: (_ for _ in ()).throw(Crash()))
    assert store.once("reply", "m1", lambda: "again") == "again"


def test_a_store_that_cannot_write_is_unavailable(tmp_path, monkeypatch):
    layer = sqlite_persistence_layer(tmp_path / "idem.sqlite3")

    def full(data_record):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(layer, "_put_record", full)
    store = PowertoolsIdempotency(lambda: layer)
    with pytest.raises(IdempotencyUnavailable, match="disk is full"):
        store.once("reply", "m1", lambda: "never")


def test_on_aws_the_in_progress_record_expires_with_the_invocation(aws_credentials):
    class Context:
        function_name = "egress"
        aws_request_id = "r1"

        def get_remaining_time_in_millis(self):
            return 7_000

    with mock_aws():
        create_idempotency_table("idem")
        store = PowertoolsIdempotency(lambda: dynamodb_persistence_layer("idem"))
        seen = {}

        def work():
            import boto3

            (item,) = boto3.client("dynamodb").scan(TableName="idem")["Items"]
            seen["expiry_ms"] = int(item["in_progress_expiration"]["N"])
            return "done"

        started = time.time() * 1000
        assert store.once("reply", "m1", work, context=Context()) == "done"
    assert started + 6_000 <= seen["expiry_ms"] <= started + 9_000


def test_namespaces_used_from_many_threads_keep_their_own_records(store):
    # Powertools re-configures its layer on every call; a shared layer once saved records
    # under another namespace's prefix and left the real one INPROGRESS.
    import threading

    barrier = threading.Barrier(8)
    errors = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            for n in range(5):
                namespace = ("analysis", "message-received")[(i + n) % 2]
                store.once(namespace, f"m{i}-{n}", lambda: "done")
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for i in range(8):
        for n in range(5):
            namespace = ("analysis", "message-received")[(i + n) % 2]
            # Completed, so a repeat returns the stored result instead of "in progress".
            assert store.once(namespace, f"m{i}-{n}", lambda: "again") == "done"


def test_a_thread_that_reads_the_record_right_after_its_commit_does_not_take_it_over(
    tmp_path, monkeypatch
):
    # A record this process wrote is taken over only when no thread of ours holds it. The
    # writer must hold the key before its commit is visible: a second thread that reads the
    # committed row in between used to take it over, and the message entered twice.
    import threading

    from chalicelib import idempotency

    store = PowertoolsIdempotency(lambda: sqlite_persistence_layer(tmp_path / "idem.sqlite3"))
    runs: list[str] = []
    second: list[BaseException | str] = []
    real_hold = idempotency._hold

    def second_delivery() -> None:
        try:
            second.append(store.once("received", "m1", lambda: runs.append("second") or "2"))
        except IdempotencyInProgress as exc:
            second.append(exc)

    def hold_with_a_duplicate_arriving(key: str) -> None:
        monkeypatch.setattr(idempotency, "_hold", real_hold)  # only the first writer's hold
        other = threading.Thread(target=second_delivery)
        other.start()
        other.join(timeout=1)  # it waits on the write lock if the commit is not yet visible
        real_hold(key)

    monkeypatch.setattr(idempotency, "_hold", hold_with_a_duplicate_arriving)
    assert store.once("received", "m1", lambda: runs.append("first") or "1") == "1"
    time.sleep(0.2)
    deadline = time.monotonic() + 10
    while not second and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runs == ["first"]
    assert second and (second[0] == "1" or isinstance(second[0], IdempotencyInProgress))
