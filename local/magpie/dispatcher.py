"""The local bus's delivering side: routes logged events to targets and runs them.

A target is a Chalice `on_cw_event` handler (matched with its own pattern), or a built-in
(the lake, the analysis orchestrator, alerts). A failing target is retried with exponential
backoff; after `max_attempts` it is parked in the dead-letter store (`magpie replay
--dead-letters` redrives it). Delivery is at least once: targets are idempotent.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chalicelib.bus.local import Delivery, LocalBusStore, add_listener, remove_listener
from chalicelib.bus.pattern import compile_pattern

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class Target:
    name: str
    matches: Callable[[dict[str, Any]], bool]
    handler: Handler


def pattern_target(name: str, pattern: dict[str, Any], handler: Handler) -> Target:
    # Compiled once: an invalid pattern fails when the runtime starts, not per event.
    return Target(name, compile_pattern(pattern).matches, handler)


class LocalLambdaContext:
    """What a Chalice handler may read from its Lambda context."""

    def __init__(self, function_name: str, timeout_ms: int = 300_000) -> None:
        self.function_name = function_name
        self.aws_request_id = f"local-{random.getrandbits(64):016x}"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Dispatcher:
    def __init__(
        self,
        store: LocalBusStore,
        targets: list[Target],
        *,
        workers: int = 2,
        max_attempts: int = 5,
        base_delay: float = 0.2,
        max_delay: float = 30.0,
        poll_interval: float = 0.5,
    ) -> None:
        self.store = store
        self.targets = {t.name: t for t in targets}
        self.workers = workers
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._in_flight: set[tuple[int, str]] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        recovered = self.store.recover_running()
        if recovered:
            logger.info("redelivering %d deliveries interrupted by a previous stop", recovered)
        add_listener(self._wake)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="magpie-target")
        self._thread = threading.Thread(target=self._loop, name="magpie-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        remove_listener(self._wake)
        if self._thread:
            self._thread.join(timeout=10)
        if self._pool:
            self._pool.shutdown(wait=True)

    def wait_idle(self, timeout: float = 60.0, settle: float = 0.2) -> bool:
        """Block until nothing is unrouted, pending or running (or timeout); True if idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._wake.set()
            if self.store.outstanding() == 0 and not self._in_flight:
                time.sleep(settle)
                if self.store.outstanding() == 0 and not self._in_flight:
                    return True
            time.sleep(0.05)
        return False

    # --- the loop ---------------------------------------------------------------------

    def _loop(self) -> None:
        routable = [(name, t.matches) for name, t in self.targets.items()]
        while not self._stop.is_set():
            self._wake.clear()
            try:
                while self.store.route_new(routable):
                    pass
                self._dispatch_due()
            except Exception:  # the loop must survive a transient SQLite error
                logger.exception("dispatcher iteration failed; retrying")
            wait = self.store.next_due_in() if len(self._in_flight) < self.workers else None
            self._wake.wait(self.poll_interval if wait is None else min(wait, self.poll_interval))

    def _dispatch_due(self) -> None:
        free = self.workers - len(self._in_flight)
        if free <= 0:
            return
        for delivery in self.store.claim_due(free):
            key = (delivery.event_seq, delivery.target)
            with self._lock:
                self._in_flight.add(key)
            assert self._pool is not None
            future = self._pool.submit(self._deliver, delivery)
            future.add_done_callback(lambda f, k=key: self._done(k, f))

    def _done(self, key: tuple[int, str], future: Future) -> None:
        with self._lock:
            self._in_flight.discard(key)
        self._wake.set()

    def _deliver(self, delivery: Delivery) -> None:
        target = self.targets.get(delivery.target)
        if target is None:
            self.store.fail(delivery, "no such target in this runtime", max_attempts=1, delay=0)
            return
        try:
            target.handler(delivery.envelope, LocalLambdaContext(target.name))
        except Exception as exc:
            delay = min(self.max_delay, self.base_delay * (2**delivery.attempts))
            delay *= random.uniform(0.5, 1.0)
            error = f"{type(exc).__name__}: {exc}"
            dead = self.store.fail(delivery, error, max_attempts=self.max_attempts, delay=delay)
            log = logger.error if dead else logger.warning
            log(
                "%s failed on %s %s (attempt %d%s): %s",
                target.name,
                delivery.envelope.get("detail-type"),
                delivery.envelope.get("id"),
                delivery.attempts + 1,
                ", parked as dead letter" if dead else "",
                error,
            )
            logger.debug("%s", traceback.format_exc())
            return
        self.store.complete(delivery)
