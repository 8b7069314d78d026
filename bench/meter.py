"""The request counter: every AWS request by service and operation, and Lambda invocations.

`Meter.install()` wraps botocore's client creation so that *every* client (the ones
`chalicelib.backend.aws_client` builds, and Powertools' own DynamoDB and Secrets Manager
clients) gets two event hooks: `before-call` (counted, registered first) and `after-call`
(timed). Canned answers for services moto lacks are further `before-call` hooks that return
a response (`Meter.answer`), as botocore's Stubber does.

Invocations: `with meter.invocation(function, memory_mb):` times a handler's wall clock and
attributes every request made inside it to that invocation. What is spent inside AWS
calls (moto or a canned answer working in-process) is not the handler's own time; on AWS it
is network wait instead, so each request adds the *modelled* latency of its operation
(bench/latency.json, assumptions). Billed duration, as Lambda bills it:

    ceil(own_ms * cpu_scale(memory) + modelled_wait_ms)      in whole ms

where cpu_scale = max(1, 1769 / memory_mb): Lambda gives a function CPU in proportion to its
memory, one full vCPU at 1769 MB, so CPU-bound Python measured on one core here runs that
much slower on a smaller function.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LATENCY_FILE = Path(__file__).resolve().parent / "latency.json"
FULL_VCPU_MB = 1769
Answer = Callable[[dict[str, Any]], dict[str, Any]]


def cpu_scale(memory_mb: int) -> float:
    """How much slower CPU-bound code runs on a Lambda of this size than on one full core."""
    return max(1.0, FULL_VCPU_MB / memory_mb)


def billed_ms(own_ms: float, wait_ms: float, memory_mb: int) -> int:
    """Lambda's billed duration: rounded up to the next whole millisecond, at least 1."""
    return max(1, math.ceil(own_ms * cpu_scale(memory_mb) + wait_ms))


@functools.cache
def latency_model() -> dict[str, Any]:
    return json.loads(LATENCY_FILE.read_text())


def modelled_latency_ms(service: str, operation: str) -> float:
    model = latency_model()
    per_service = model["aws"].get(service, {})
    return float(per_service.get(operation, per_service.get("*", model["aws_default_ms"])))


_THREADS = threading.local()
_TOKENS = itertools.count(1)


def thread_token() -> int:
    """A number for the current thread that no other thread ever gets (thread idents are
    reused as soon as a thread ends, so they cannot tell two short-lived threads apart)."""
    token = getattr(_THREADS, "token", None)
    if token is None:
        token = _THREADS.token = next(_TOKENS)
    return token


@dataclass
class Invocation:
    """One handler run. Calls made on other threads (a handler's thread pool) run beside
    each other: the handler waits for the slowest thread, not for the sum of them all."""

    function: str
    memory_mb: int
    wall_ms: float = 0.0
    requests: Counter = field(default_factory=Counter)
    log_bytes: int = 0
    error: str | None = None
    owner: int = field(default_factory=thread_token)
    # Per thread: time inside AWS/HTTP calls here (moto, canned answers, nested work) and the
    # modelled network wait of those calls on AWS.
    in_calls_by_thread: Counter = field(default_factory=Counter)
    wait_by_thread: Counter = field(default_factory=Counter)

    def _critical_path(self, by_thread: Counter) -> float:
        others = [ms for thread, ms in by_thread.items() if thread != self.owner]
        return by_thread[self.owner] + max(others, default=0.0)

    @property
    def in_calls_ms(self) -> float:
        return self._critical_path(self.in_calls_by_thread)

    @property
    def wait_ms(self) -> float:
        return self._critical_path(self.wait_by_thread)

    @property
    def own_ms(self) -> float:
        return max(0.0, self.wall_ms - self.in_calls_ms)

    @property
    def billed_ms(self) -> int:
        return billed_ms(self.own_ms, self.wait_ms, self.memory_mb)

    def as_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "memory_mb": self.memory_mb,
            "wall_ms": round(self.wall_ms, 3),
            "own_ms": round(self.own_ms, 3),
            "wait_ms": round(self.wait_ms, 1),
            "billed_ms": self.billed_ms,
            "requests": sum(self.requests.values()),
            "error": self.error,
        }


class Meter:
    """Counts requests and invocations for one benchmark run (see the module docstring)."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.request_bytes: Counter[tuple[str, str]] = Counter()
        self.invocations: list[Invocation] = []
        self.published: list[dict[str, Any]] = []  # PutEvents entries, in order
        self.documents: list[tuple[str, int]] = []  # (Comprehend operation, characters)
        self._answers: dict[tuple[str, str], Answer] = {}
        self._stack: list[Invocation] = []
        self._starts: dict[int, float] = {}
        self._lock = threading.Lock()
        self._original_create_client: Any = None

    # --- installing the hooks ---------------------------------------------------------

    def install(self) -> Meter:
        """Hook every botocore client created from now on (until `uninstall`)."""
        from botocore.client import ClientCreator

        if self._original_create_client is not None:
            return self
        original = ClientCreator.create_client
        meter = self

        @functools.wraps(original)
        def create_client(creator: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(creator, *args, **kwargs)
            meter.hook(client)
            return client

        self._original_create_client = original
        ClientCreator.create_client = create_client
        return self

    def uninstall(self) -> None:
        from botocore.client import ClientCreator

        if self._original_create_client is not None:
            ClientCreator.create_client = self._original_create_client
            self._original_create_client = None

    def hook(self, client: Any) -> None:
        events = client.meta.events
        events.register_first("before-parameter-build", self._keep_params)
        events.register_first("before-call", self._before_call)
        events.register("before-call", self._answer_call)
        events.register_last("after-call", self._after_call)

    def answer(self, service: str, operation: str, fn: Answer) -> None:
        """Answer `service.operation` with fn(params) instead of sending it (canned shapes)."""
        self._answers[(service, operation)] = fn

    # --- the hooks ----------------------------------------------------------------------

    @staticmethod
    def _names(model: Any) -> tuple[str, str]:
        return model.service_model.service_name, model.name

    @staticmethod
    def _keep_params(params: dict[str, Any], context: Any, **_: Any) -> None:
        # before-call sees the serialised request; the API parameters are only seen here.
        context["bench_params"] = params

    def _before_call(self, model: Any, context: Any, **_: Any) -> None:
        service, operation = self._names(model)
        params = context.get("bench_params", {})
        self.count(service, operation, self._size(service, operation, params))
        if (service, operation) == ("events", "PutEvents"):
            self.published.extend(params.get("Entries", []))
        if service == "comprehend":
            texts = params.get("TextList") or [params.get("Text", "")]
            self.documents.extend((operation, len(text)) for text in texts)
        self._starts[id(context)] = time.perf_counter()

    def _answer_call(self, model: Any, context: Any, **_: Any) -> Any:
        fn = self._answers.get(self._names(model))
        if fn is None:
            return None
        from botocore.awsrequest import AWSResponse

        return AWSResponse(None, 200, {}, None), fn(context.get("bench_params", {}))

    def _after_call(self, model: Any, context: Any, **_: Any) -> None:
        start = self._starts.pop(id(context), None)
        if start is None:
            return
        self.add_call_time(time.perf_counter() - start, *self._names(model))

    @staticmethod
    def _size(service: str, operation: str, params: dict[str, Any]) -> int:
        if (service, operation) == ("s3", "PutObject"):
            body = params.get("Body", b"")
            return len(body) if isinstance(body, (bytes, bytearray, str)) else 0
        if (service, operation) == ("events", "PutEvents"):
            return sum(len(e.get("Detail", "")) for e in params.get("Entries", []))
        return 0

    # --- counting, also for non-AWS HTTP (the X API, the photo CDN) ---------------------

    def count(self, service: str, operation: str, size: int = 0) -> None:
        with self._lock:
            self.requests[(service, operation)] += 1
            self.request_bytes[(service, operation)] += size
            if self._stack:
                self._stack[-1].requests[(service, operation)] += 1

    def add_call_time(self, seconds: float, service: str, operation: str) -> None:
        """A call took `seconds` here; on AWS its modelled latency is waited instead."""
        thread = thread_token()
        with self._lock:
            if self._stack:
                current = self._stack[-1]
                current.in_calls_by_thread[thread] += seconds * 1000
                current.wait_by_thread[thread] += modelled_latency_ms(service, operation)

    def add_wait(self, wait_ms: float) -> None:
        thread = thread_token()
        with self._lock:
            if self._stack:
                self._stack[-1].wait_by_thread[thread] += wait_ms

    @contextlib.contextmanager
    def external_call(self, service: str, operation: str, size: int = 0) -> Iterator[None]:
        """Count and time a non-botocore call (requests to X or the CDN)."""
        self.count(service, operation, size)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add_call_time(time.perf_counter() - start, service, operation)

    # --- invocations --------------------------------------------------------------------

    @contextlib.contextmanager
    def invocation(self, function: str, memory_mb: int) -> Iterator[Invocation]:
        record = Invocation(function, memory_mb)
        with self._lock:
            self._stack.append(record)
        start = time.perf_counter()
        try:
            yield record
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"[:300]
            raise
        finally:
            record.wall_ms = (time.perf_counter() - start) * 1000
            with self._lock:
                self._stack.remove(record)
                self.invocations.append(record)
            # A nested invocation (Lex calling its fulfilment Lambda) is waited for by the
            # caller; its time is already inside the caller's current AWS call.
            self.add_wait(record.billed_ms)

    def by_operation(self) -> dict[str, int]:
        return {f"{s}:{o}": n for (s, o), n in sorted(self.requests.items())}

    def reset(self) -> None:
        self.requests.clear()
        self.request_bytes.clear()
        self.invocations.clear()
        self.published.clear()
        self.documents.clear()
