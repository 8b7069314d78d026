"""Powertools idempotency over the local SQLite persistence layer (and DynamoDB in moto)."""

from __future__ import annotations

import time

import pytest
from magpie.moto_world import create_idempotency_table
from moto import mock_aws

from chalicelib.idempotency import (
    IdempotencyInProgress,
    PowertoolsIdempotency,
    dynamodb_persistence_layer,
    sqlite_persistence_layer,
)


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


def test_crashed_attempt_frees_its_key_after_the_in_progress_window(tmp_path):
    layer_path = tmp_path / "idem.sqlite3"
    crashed = PowertoolsIdempotency(
        lambda: sqlite_persistence_layer(layer_path), in_progress_ms=300
    )

    class Crash(BaseException):
        """Simulates the process dying: Powertools does not clean up BaseException."""

    with pytest.raises(Crash):
        crashed.once("reply", "m1", lambda: (_ for _ in ()).throw(Crash()))
    restarted = PowertoolsIdempotency(lambda: sqlite_persistence_layer(layer_path))
    with pytest.raises(IdempotencyInProgress):  # the crashed attempt still holds the key
        restarted.once("reply", "m1", lambda: "too early")
    time.sleep(0.35)
    assert restarted.once("reply", "m1", lambda: "after restart") == "after restart"


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
