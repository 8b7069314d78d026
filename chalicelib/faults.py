"""Fault injection for the local runtime: make ports fail at random, repeatably.

Switched on by `MAGPIE_FAULTS` (local backend only; `chalicelib.backend` wraps each local
adapter with `wrap()` when it is set), e.g.

    MAGPIE_FAULTS='bus=0.2,blob=0.2,text=0.2,image=0.2,conversation=0.2,x=0.2'
    MAGPIE_FAULTS_SEED=7

Each entry is `port=probability` that one call to that port fails:

  bus           EventBus.put raises PublishError; half of the faults happen *after* the
                events were committed (an acknowledgement lost on the way back), so callers
                also see the ambiguous failure EventBridge can give
  blob          BlobStore.put / get raise InjectedFault (an OSError)
  text          each TextAnalyser capability raises InjectedFault
  image         each ImageAnalyser capability raises InjectedFault
  conversation  Conversation.ask raises InjectedFault
  x             the poster raises the egress error classes before anything is posted:
                RateLimited (429, reset 2 s ahead), TransientXError 503, or a
                TransientXError connect timeout, a third each

Repeatable: whether a call fails is a hash of (seed, the process's epoch, port, operation,
the call's stable arguments, how many times this process made that same call), not a shared
random stream, so the outcome does not depend on how threads interleave. The epoch counts
the processes that injected faults under this MAGPIE_HOME before (a restart, a `magpie
replay`): a new process draws afresh, as a real outage does not fail the same call forever,
and the same sequence of runs repeats the same faults.

Every injected fault is appended to `MAGPIE_HOME/faults.jsonl` (and each process's start,
which is how the epoch is counted), so a test can prove the faults really happened: a chaos
run in which nothing failed proves nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.config import ConfigError
from chalicelib.errors import UnavailableError

logger = logging.getLogger(__name__)

FAULTS_ENV = "MAGPIE_FAULTS"
SEED_ENV = "MAGPIE_FAULTS_SEED"
LOG_NAME = "faults.jsonl"
PORTS = ("bus", "blob", "text", "image", "conversation", "x")
RATE_LIMIT_RESET_S = 2.0  # an injected 429 resets soon: short enough to be waited out inline

# The methods of each port that may fail; anything else passes straight through.
_METHODS: dict[str, tuple[str, ...]] = {
    "bus": ("put",),
    "blob": ("put", "get"),
    "text": ("sentiment", "entities", "key_phrases", "detect_language"),
    "image": ("labels", "text", "faces", "moderation"),
    "conversation": ("ask",),
    "x": ("post",),
}


class InjectedFault(UnavailableError, OSError):
    """A failure made up by the fault injector (an OSError, like the I/O it stands for)."""


@dataclass
class FaultPlan:
    """Which ports fail, how often, and the seed that makes a run repeatable."""

    rates: Mapping[str, float]
    seed: int = 0
    log_path: Path | None = None
    epoch: int = 0
    _calls: dict[tuple[str, str, str], int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def draw(self, port: str, operation: str, key: str) -> float | None:
        """A uniform number in [0, 1) if this call must fail, else None."""
        rate = self.rates.get(port, 0.0)
        if rate <= 0:
            return None
        with self._lock:
            count = self._calls.get((port, operation, key), 0)
            self._calls[(port, operation, key)] = count + 1
        value = _uniform(f"{self.seed}|{self.epoch}|{port}|{operation}|{key}|{count}")
        return value / rate if value < rate else None

    def record(self, port: str, operation: str, mode: str) -> None:
        """Note one injected fault in MAGPIE_HOME/faults.jsonl."""
        logger.debug("injected %s fault on %s.%s", mode, port, operation)
        if self.log_path is not None:
            _append(self.log_path, {"port": port, "op": operation, "mode": mode, "at": time.time()})


def _append(path: Path, entry: dict[str, Any]) -> None:
    """One O_APPEND write per line: concurrent writers never interleave within a line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)


def _next_epoch(path: Path) -> int:
    """How many processes injected faults here before this one; records this one's start.
    (Two processes starting in the same instant may share an epoch: repeatability, not
    correctness, is what the epoch is for.)"""
    epoch = sum(1 for entry in _entries(path) if "start" in entry)
    _append(path, {"start": epoch, "pid": os.getpid(), "at": time.time()})
    return epoch


def _entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def parse_rates(spec: str) -> dict[str, float]:
    """'bus=0.2,x=0.5' -> {'bus': 0.2, 'x': 0.5}; raises ConfigError naming the variable."""
    rates: dict[str, float] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        port, sep, raw = item.partition("=")
        port = port.strip()
        if not sep or port not in PORTS:
            raise ConfigError(f"{FAULTS_ENV}: {item!r} is not PORT=PROBABILITY, ports {PORTS}")
        try:
            rate = float(raw)
        except ValueError as exc:
            raise ConfigError(f"{FAULTS_ENV}: {raw!r} is not a probability") from exc
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"{FAULTS_ENV}: the probability for {port} must be in [0, 1]")
        rates[port] = rate
    return rates


def plan_from_env(env: Mapping[str, str], home: Path | None) -> FaultPlan | None:
    """The plan the environment asks for, or None when fault injection is off."""
    spec = env.get(FAULTS_ENV, "").strip()
    if not spec:
        return None
    raw_seed = env.get(SEED_ENV, "0").strip() or "0"
    try:
        seed = int(raw_seed)
    except ValueError as exc:
        raise ConfigError(f"{SEED_ENV} must be an integer, got {raw_seed!r}") from exc
    rates = parse_rates(spec)
    if home is None:
        return FaultPlan(rates, seed)
    log_path = home / LOG_NAME
    return FaultPlan(rates, seed, log_path, _next_epoch(log_path))


_plans: dict[tuple[str, str, str], FaultPlan] = {}
_plans_lock = threading.Lock()


def current_plan() -> FaultPlan | None:
    """One plan per configuration, shared by every wrapped port (so call counts are too)."""
    from chalicelib.config import settings

    config = settings()
    if config.backend != "local":
        return None  # never on AWS, whatever the environment says
    env = config.env
    key = (env.get(FAULTS_ENV, ""), env.get(SEED_ENV, ""), str(config.home))
    with _plans_lock:
        if key not in _plans:
            plan = plan_from_env(env, config.home)
            if plan is None:
                return None
            _plans[key] = plan
        return _plans[key]


def wrap(port: str, adapter: Any) -> Any:
    """`adapter` with fault injection when MAGPIE_FAULTS asks for it, else `adapter` itself."""
    if port not in PORTS:
        raise ValueError(f"unknown port {port!r}")
    plan = current_plan()
    if plan is None or plan.rates.get(port, 0.0) <= 0:
        return adapter
    logger.warning("fault injection on %s: %.0f%% of calls fail", port, 100 * plan.rates[port])
    return FaultyAdapter(port, adapter, plan)


class FaultyAdapter:
    """A transparent proxy that fails some calls of the port's methods."""

    def __init__(self, port: str, adapter: Any, plan: FaultPlan) -> None:
        self._port = port
        self._adapter = adapter
        self._plan = plan

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._adapter, name)
        if name not in _METHODS[self._port] or not callable(attribute):
            return attribute
        return _faulty_call(self._port, name, attribute, self._plan)


def _faulty_call(port: str, operation: str, method: Callable, plan: FaultPlan) -> Callable:
    def call(*args: Any, **kwargs: Any) -> Any:
        draw = plan.draw(port, operation, call_key(port, args, kwargs))
        if draw is None:
            return method(*args, **kwargs)
        if port == "bus" and draw >= 0.5:
            # The events are committed, but the caller hears that the put failed.
            method(*args, **kwargs)
            plan.record(port, operation, "ack_lost")
            raise _publish_error("injected fault: acknowledgement lost after the put")
        mode = _mode(port, draw)
        plan.record(port, operation, mode)
        raise _error(port, mode)

    return call


def _mode(port: str, draw: float) -> str:
    if port == "bus":
        return "before_put"
    if port == "x":
        return ("rate_limited", "server_error", "timeout")[min(2, int(draw * 3))]
    return "error"


def _error(port: str, mode: str) -> Exception:
    if port == "bus":
        return _publish_error("injected fault: the bus refused the put")
    if port == "x":
        from chalicelib.egress.x_client import RateLimited, TransientXError

        if mode == "rate_limited":
            return RateLimited(
                "injected fault: 429 Too Many Requests",
                reset_at=time.time() + RATE_LIMIT_RESET_S,
            )
        if mode == "server_error":
            return TransientXError("injected fault: 503 Service Unavailable", status_code=503)
        return TransientXError("injected fault: connect timeout")
    return InjectedFault(f"injected fault on {port}")


def _publish_error(message: str) -> Exception:
    from chalicelib.bus import PublishError

    return PublishError(message)


def call_key(port: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """What identifies a call across retries: its stable arguments, never ids made per call."""
    if port == "bus":
        events = args[0] if args else kwargs.get("events", ())
        return _digest([_event_key(event) for event in events])
    if port == "x":
        request = args[0] if args else kwargs.get("request")
        target = getattr(request, "reply_to_tweet_id", None) or getattr(
            request, "reply_to_user_id", ""
        )
        return _digest([getattr(request, "kind", ""), target, getattr(request, "text", "")])
    # Blob keys, texts, image keys, (text, session): bytes are summarised by their length.
    stable = [a if not isinstance(a, bytes) else len(a) for a in args]
    return _digest([stable, sorted(kwargs.items())])


def _event_key(event: Any) -> Any:
    detail = getattr(event, "detail", {}) or {}
    ident = detail.get("MessageId") or detail.get("id_str") or detail.get("id")
    if ident is None:
        return [event.detail_type, _digest(detail)]
    return [event.detail_type, detail.get("Kind"), str(ident)]


def _digest(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _uniform(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def read_log(home: Path) -> list[dict[str, Any]]:
    """Every fault injected under `home` (for tests and reports), without the start lines."""
    return [entry for entry in _entries(home / LOG_NAME) if "port" in entry]
