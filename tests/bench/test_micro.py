"""The micro-benchmark measures the code as it is, and counts what it says it counts."""

from __future__ import annotations

from bench import micro


def test_the_dispatcher_count_covers_every_delivery():
    result = micro.dispatcher_polls(deliveries=3)
    assert result["deliveries"] == 3
    # At least one routing pass per put; the figure itself is the benchmark's, not a target.
    assert result["route_new_calls"] >= 1
    assert result["seconds"] >= micro.DELIVERY_SECONDS


def test_the_bus_store_cycle_runs_on_the_current_store():
    assert micro.bus_store_cycle(events=3) > 0
