"""The local bus's delivering side: routes logged events to targets and runs them.

A target is a Chalice `on_cw_event` handler (matched with its own pattern), or a built-in
(the lake, the analysis orchestrator, alerts). Delivery is at least once: targets are
idempotent. What happens when a target does not finish:

- it raises: retried with exponential backoff; after `max_attempts` it is parked in the
  dead-letter store (`magpie replay --dead-letters` redrives it);
- it waits on another live worker (`IdempotencyInProgress`) or on a full disk: handed back
  without counting the attempt, a little later (longer and longer while the disk stays
  full, logged once per episode), so work resumes by itself when space returns;
- its process dies: the attempt was already counted when it was claimed; the next
  dispatcher on the file reclaims it (chalicelib/bus/local.py). A delivery with crashes on
  record runs alone among such suspects, so the one that keeps killing the process is
  parked after `max_attempts` without dragging the others down with it;
- the bus cannot record the outcome (a full disk): the record is kept in memory and
  retried by the loop, so no row stays `running` behind a live process.

Work closest to done runs first: an outcome before a reply command before an analysed
message before a new message, so the first reply of a burst does not wait for the whole
burst to be analysed.
"""

from __future__ import annotations

import functools
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
from chalicelib.ports import IdempotencyInProgress
from chalicelib.sqlite_file import is_disk_full

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]

# Lower runs first: how far an event is from its message's outcome.
STAGES = {
    "TWEET_SENT": 0,
    "REPLY_SKIPPED": 0,
    "TWEET_FAILED": 0,
    "SEND_TWEET": 1,
    "MESSAGE_ANALYSED": 2,
    "MESSAGE_ANALYSIS_FAILED": 2,
    "MESSAGE_RECEIVED": 3,
}
OTHER_STAGE = 4


def delivery_priority(target: str, envelope: dict[str, Any]) -> int:
    return STAGES.get(str(envelope.get("detail-type")), OTHER_STAGE)


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


class _Backoff:
    """A growing pause for a condition that is not any one delivery's fault (a full disk),
    logged when it starts and when it ends rather than on every retry. It ends after a
    success with no new failure for `quiet` seconds: on a nearly full disk small writes
    still succeed between failures, and each must not start a new episode."""

    def __init__(
        self, what: str, base: float = 0.5, ceiling: float = 30.0, quiet: float = 5.0
    ) -> None:
        self.what = what
        self.base = base
        self.ceiling = ceiling
        self.quiet = quiet
        self.streak = 0
        self._last_hit = 0.0
        self._lock = threading.Lock()

    def hit(self, error: BaseException) -> float:
        with self._lock:
            self.streak += 1
            self._last_hit = time.monotonic()
            if self.streak == 1:
                logger.error("%s: %s; backing off until it clears", self.what, error)
            return min(self.ceiling, self.base * 2 ** min(self.streak - 1, 16))

    def clear(self) -> None:
        with self._lock:
            if not self.streak or time.monotonic() - self._last_hit < self.quiet:
                return
            logger.warning("%s cleared after %d retries", self.what, self.streak)
            self.streak = 0


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
        wait_delay: float = 0.5,
        reclaim_interval: float = 5.0,
    ) -> None:
        self.store = store
        self.targets = {t.name: t for t in targets}
        self.workers = workers
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.poll_interval = poll_interval
        self.wait_delay = wait_delay
        self.reclaim_interval = reclaim_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._in_flight: dict[tuple[int, str], Delivery] = {}
        self._unrecorded: list[tuple[Delivery, Callable[[], Any]]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._disk = _Backoff("the disk is full")
        self._bus_trouble = _Backoff("the local bus is failing")
        self._paused_until = 0.0

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._reclaim()
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
        try:
            self._record_unrecorded()
        except Exception:
            logger.exception(
                "stopping with outcomes the bus could not record; the next start redelivers them"
            )

    def wait_idle(self, timeout: float = 60.0, settle: float = 0.2) -> bool:
        """Block until nothing is unrouted, pending or running (or timeout); True if idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._wake.set()
            if self._idle():
                time.sleep(settle)
                if self._idle():
                    return True
            time.sleep(0.05)
        return False

    def _idle(self) -> bool:
        with self._lock:
            busy = bool(self._in_flight or self._unrecorded)
        return not busy and self.store.outstanding() == 0

    # --- the loop ---------------------------------------------------------------------

    def _loop(self) -> None:
        routable = [(name, t.matches) for name, t in self.targets.items()]
        next_reclaim = time.monotonic() + self.reclaim_interval
        while not self._stop.is_set():
            self._wake.clear()
            pause = max(0.0, self._paused_until - time.monotonic())
            if pause:
                self._wake.wait(pause)
                continue
            try:
                self._record_unrecorded()
                while self.store.route_new(routable, priority=delivery_priority):
                    pass
                if time.monotonic() >= next_reclaim:
                    self._reclaim()
                    next_reclaim = time.monotonic() + self.reclaim_interval
                self._dispatch_due()
                self._bus_trouble.clear()
                wait = self.store.next_due_in() if self._free() > 0 else None
            except Exception as exc:  # the loop must outlive a full disk or a locked file
                backoff = self._disk if is_disk_full(exc) else self._bus_trouble
                self._pause(backoff.hit(exc))
                logger.debug("dispatcher iteration failed", exc_info=True)
                continue
            self._wake.wait(self.poll_interval if wait is None else min(wait, self.poll_interval))

    def _pause(self, seconds: float) -> None:
        self._paused_until = time.monotonic() + seconds * random.uniform(0.8, 1.0)

    def _reclaim(self) -> None:
        due, parked = self.store.reclaim_orphans(self.max_attempts)
        if due or parked:
            logger.warning(
                "reclaimed %d deliveries whose process died (%d parked after %d attempts)",
                due + parked,
                parked,
                self.max_attempts,
            )

    def _free(self) -> int:
        with self._lock:
            return self.workers - len(self._in_flight) - len(self._unrecorded)

    def _dispatch_due(self) -> None:
        free = self._free()
        if free <= 0:
            return
        claimed = self.store.claim_due(free, suspects=False)
        with self._lock:
            suspect_running = any(d.crashes for d in self._in_flight.values())
        if len(claimed) < free and not suspect_running:
            # One delivery that died with a process before, at a time: if it is what kills
            # the process, it takes down nothing else that was also suspect.
            claimed += self.store.claim_due(1, suspects=True)
        for delivery in claimed:
            key = (delivery.event_seq, delivery.target)
            with self._lock:
                self._in_flight[key] = delivery
            assert self._pool is not None
            future = self._pool.submit(self._deliver, delivery)
            future.add_done_callback(functools.partial(self._done, key))

    def _done(self, key: tuple[int, str], future: Future) -> None:
        with self._lock:
            delivery = self._in_flight.pop(key, None)
        error = future.exception()
        if error is not None and delivery is not None:
            # _deliver records every outcome itself; reaching here means a bug, and the row
            # must still not stay running behind this live process.
            logger.error("delivery of %s to %s crashed: %r", key[0], key[1], error)
            self._keep_unrecorded(
                delivery,
                functools.partial(
                    self.store.postpone, delivery, f"the dispatcher failed: {error!r}", delay=1
                ),
            )
        self._wake.set()

    def _deliver(self, delivery: Delivery) -> None:
        target = self.targets.get(delivery.target)
        if target is None:
            self._record(
                delivery,
                lambda: self.store.fail(
                    delivery, "no such target in this runtime", max_attempts=1, delay=0
                ),
            )
            return
        try:
            target.handler(delivery.envelope, LocalLambdaContext(target.name))
        except Exception as exc:
            self._after_failure(target, delivery, exc)
            return
        if self._record(delivery, lambda: self.store.complete(delivery)):
            self._disk.clear()

    def _after_failure(self, target: Target, delivery: Delivery, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, IdempotencyInProgress):
            # Another live worker holds the key: wait for it, without spending an attempt.
            delay = self.wait_delay * random.uniform(0.5, 1.0)
            self._record(delivery, lambda: self.store.postpone(delivery, error, delay=delay))
            return
        if is_disk_full(exc):
            delay = self._disk.hit(exc)
            self._record(delivery, lambda: self.store.postpone(delivery, error, delay=delay))
            return
        delay = min(self.max_delay, self.base_delay * (2**delivery.attempts))
        delay *= random.uniform(0.5, 1.0)
        outcome: list[bool] = []
        recorded = self._record(
            delivery,
            lambda: outcome.append(
                self.store.fail(delivery, error, max_attempts=self.max_attempts, delay=delay)
            ),
        )
        dead = recorded and outcome[0]
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

    # --- outcomes the bus could not record ------------------------------------------------

    def _record(self, delivery: Delivery, write: Callable[[], Any]) -> bool:
        """Write a delivery's outcome; if the bus cannot take it now, keep it for the loop."""
        try:
            write()
        except Exception as exc:
            backoff = self._disk if is_disk_full(exc) else self._bus_trouble
            backoff.hit(exc)
            self._keep_unrecorded(delivery, write)
            return False
        return True

    def _keep_unrecorded(self, delivery: Delivery, write: Callable[[], Any]) -> None:
        with self._lock:
            self._unrecorded.append((delivery, write))

    def _record_unrecorded(self) -> None:
        with self._lock:
            pending, self._unrecorded = self._unrecorded, []
        for index, (_, write) in enumerate(pending):
            try:
                write()
            except Exception:
                with self._lock:
                    self._unrecorded.extend(pending[index:])
                raise
