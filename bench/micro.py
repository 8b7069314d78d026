"""Two micro-benchmarks of the local bus (docs/PERFORMANCE.md, "Findings and fixes").

`python -m bench.micro` writes bench/results/micro.json:

* dispatcher: 12 deliveries of 0.25 s on 2 workers, counting `route_new` calls (each a SQLite
  write transaction). A dispatcher that waits for a free worker makes a few dozen; one that
  polls while every worker is busy makes tens of thousands.
* bus_store: one event's put, route, claim and complete on the SQLite bus, in milliseconds
  (every write is an fsync: `synchronous=FULL`).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.environment import machine, write_result

DELIVERIES = 12
DELIVERY_SECONDS = 0.25
WORKERS = 2


def dispatcher_polls(deliveries: int = DELIVERIES) -> dict[str, Any]:
    """`route_new` calls while `deliveries` slow deliveries share the workers."""
    from magpie.dispatcher import Dispatcher, Target

    from chalicelib.bus.local import LocalBusStore, LocalEventBus
    from chalicelib.events import OutgoingEvent

    delivered = []
    with tempfile.TemporaryDirectory(prefix="bench-micro-") as tmp:
        store = LocalBusStore(Path(tmp) / "bus.sqlite3")
        calls = [0]
        route_new = store.route_new

        def counted(*args: Any, **kwargs: Any) -> int:
            calls[0] += 1
            return route_new(*args, **kwargs)

        def slow(envelope: dict[str, Any], context: Any) -> None:
            time.sleep(DELIVERY_SECONDS)
            delivered.append(envelope["detail"]["i"])

        store.route_new = counted  # type: ignore[method-assign]
        target = Target("slow", lambda envelope: True, slow)
        dispatcher = Dispatcher(store, [target], workers=WORKERS, base_delay=0.01)
        dispatcher.start()
        started = time.perf_counter()
        LocalEventBus(store, account="0", region="local").put(
            [OutgoingEvent("bench", "T", {"i": i}) for i in range(deliveries)]
        )
        dispatcher.wait_idle(60)
        elapsed = time.perf_counter() - started
        dispatcher.stop()
    return {
        "deliveries": len(delivered),
        "seconds": round(elapsed, 3),
        "route_new_calls": calls[0],
    }


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


def run(runs: int = 3) -> dict[str, Any]:
    cycles = [bus_store_cycle() for _ in range(runs)]
    return {
        "machine": machine(),
        "dispatcher": dispatcher_polls(),
        "bus_store_ms_per_event": {"median": statistics.median(cycles), "runs": runs},
    }


def main() -> None:
    path = write_result("micro", run())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
