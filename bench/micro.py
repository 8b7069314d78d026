"""Two micro-benchmarks behind the local pipeline's findings (docs/PERFORMANCE.md).

`python -m bench.micro` writes bench/results/micro.json:

* dispatcher: 12 deliveries of 0.25 s on 2 workers, counting `route_new` calls (each a SQLite
  write transaction) with the dispatcher loop as it is and as it was before the one-line fix
  (which waited 0 s whenever a delivery was due, even with no free worker: a busy loop);
* bus_store: one event's put, route, claim and complete on the SQLite bus, with one
  connection per thread (chalicelib/sqlite_file.py, as it is) and with a new connection per
  operation (as it was, patched back in here only).
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.environment import machine, write_result


def _old_loop(self: Any) -> None:
    """The dispatcher loop before the fix (local/magpie/dispatcher.py), for comparison."""
    routable = [(name, t.matches) for name, t in self.targets.items()]
    while not self._stop.is_set():
        self._wake.clear()
        try:
            while self.store.route_new(routable):
                pass
            self._dispatch_due()
        except Exception:  # noqa: S112 (as the original loop: survive and go on)
            continue
        wait = self.store.next_due_in()
        self._wake.wait(self.poll_interval if wait is None else min(wait, self.poll_interval))


def dispatcher_spin(old: bool) -> dict[str, Any]:
    from magpie.dispatcher import Dispatcher, Target

    from chalicelib.bus.local import LocalBusStore, LocalEventBus
    from chalicelib.events import OutgoingEvent

    with tempfile.TemporaryDirectory(prefix="bench-micro-") as tmp:
        store = LocalBusStore(Path(tmp) / "bus.sqlite3")
        calls = [0]
        route_new = store.route_new

        def counted(*args: Any, **kwargs: Any) -> int:
            calls[0] += 1
            return route_new(*args, **kwargs)

        store.route_new = counted  # type: ignore[method-assign]
        target = Target("slow", lambda envelope: True, lambda envelope, context: time.sleep(0.25))
        dispatcher = Dispatcher(store, [target], workers=2, base_delay=0.01)
        if old:
            dispatcher._loop = lambda: _old_loop(dispatcher)  # type: ignore[method-assign]
        dispatcher.start()
        started = time.perf_counter()
        LocalEventBus(store, account="0", region="local").put(
            [OutgoingEvent("bench", "T", {"i": i}) for i in range(12)]
        )
        dispatcher.wait_idle(60)
        elapsed = time.perf_counter() - started
        dispatcher.stop()
    return {"seconds": round(elapsed, 3), "route_new_calls": calls[0]}


@contextmanager
def _connection_per_operation() -> Any:
    """The old local storage, patched back in: a new SQLite connection (and its PRAGMAs) for
    every operation, closed after it. chalicelib/sqlite_file.py now keeps one per thread."""
    from chalicelib import sqlite_file

    original = sqlite_file.SqliteFile.connect

    @contextmanager
    def connect(self: Any) -> Any:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=30000")
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.rollback()
            raise
        finally:
            db.close()

    sqlite_file.SqliteFile.connect = connect  # type: ignore[method-assign]
    try:
        yield
    finally:
        sqlite_file.SqliteFile.connect = original  # type: ignore[method-assign]


def bus_store_cycle(events: int = 200) -> float:
    """Milliseconds per event for put + route + claim + complete + next_due_in."""
    from chalicelib.bus.local import LocalBusStore, LocalEventBus
    from chalicelib.events import OutgoingEvent

    with tempfile.TemporaryDirectory(prefix="bench-micro-") as tmp:
        store = LocalBusStore(Path(tmp) / "bus.sqlite3")
        bus = LocalEventBus(store, account="0", region="local")
        started = time.perf_counter()
        for i in range(events):
            bus.put([OutgoingEvent("bench", "T", {"i": i})])
            store.route_new([("x", lambda envelope: True)])
            for delivery in store.claim_due(10):
                store.complete(delivery)
            store.next_due_in()
        return (time.perf_counter() - started) / events * 1000


def run() -> dict[str, Any]:
    with _connection_per_operation():
        per_operation = [bus_store_cycle() for _ in range(3)]
    per_thread = [bus_store_cycle() for _ in range(3)]
    return {
        "machine": machine(),
        "dispatcher": {
            "before_fix": dispatcher_spin(old=True),
            "after_fix": dispatcher_spin(old=False),
        },
        "bus_store_ms_per_event": {
            "connection_per_operation": statistics.median(per_operation),
            "connection_per_thread": statistics.median(per_thread),
            "runs": 3,
        },
    }


def main() -> None:
    path = write_result("micro", run())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
