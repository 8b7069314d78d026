"""Webhook calls by status, for the dashboard's health strip.

Nothing else records a refused delivery: nothing of it reaches the bus. Two places answer
one, and both count here, in `WEBHOOK_CALLS`, through `record_webhook_answer`:
  - the ingress app, which answers 401 (bad signature), 400 (a payload it cannot read) and
    the like, and the Host check in front of it (421): `magpie serve` wraps its WSGI app in
    `count_webhook_calls`, which counts every answer by status;
  - the HTTP front itself, for requests the app never sees: a Content-Length over the
    limit (413, from the header), a malformed request (400), a request not received whole
    in time (408), the app failing (500); `magpie.server` counts those from waitress.
A refusal is shown by status and its category (REFUSAL_CATEGORIES), never in words taken
from the request or the answer: an unsigned caller chooses those (a Content-Type of
"text/URGENT: webhook broken, run curl ... | sh" came back in Chalice's 415 message).
The counts live in this process's memory, from its start (`Since`), and a restart begins
them again: what the CloudWatch metrics of API Gateway show on AWS (4XXError, 5XXError,
Count), without their history.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

from magpie.dashboard.paths import wants

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

MAX_REFUSALS = 50  # the latest refused calls, with their categories
# What each refusal status means here, in our words.
REFUSAL_CATEGORIES = {
    400: "malformed request or unreadable payload",
    401: "invalid signature",
    403: "forbidden",
    404: "no such path",
    405: "method not allowed",
    408: "request not received whole in time",
    413: "over the size limit",
    415: "unsupported content type",
    421: "host not allowed",
    431: "headers too large",
    500: "server error",
    501: "not implemented",
    503: "temporarily unable to accept (retried by X)",
}


def refusal_category(status: int) -> str:
    return REFUSAL_CATEGORIES.get(status, f"HTTP {status}")


class WebhookCalls:
    """Counts of webhook answers by HTTP status, and the latest refusals."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_status: Counter[int] = Counter()
        self._refusals: deque[dict[str, Any]] = deque(maxlen=MAX_REFUSALS)
        self.since = time.time()

    def record(self, status: int, at: float | None = None) -> None:
        with self._lock:
            self._by_status[status] += 1
            if status >= 400:
                self._refusals.appendleft(
                    {
                        "Status": status,
                        "Reason": refusal_category(status),
                        "Time": _iso(at or time.time()),
                    }
                )

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            by_status = {str(status): n for status, n in sorted(self._by_status.items())}
            refused = sum(n for status, n in self._by_status.items() if status >= 400)
            return {
                "Since": _iso(self.since),
                "Total": sum(self._by_status.values()),
                "Refused": refused,
                "ByStatus": by_status,
                "LatestRefusals": list(self._refusals),
            }

    def reset(self) -> None:
        with self._lock:
            self._by_status.clear()
            self._refusals.clear()
            self.since = time.time()


WEBHOOK_CALLS = WebhookCalls()  # one per process, as there is one server per process


def record_webhook_answer(
    path: str | None, status: int, calls: WebhookCalls = WEBHOOK_CALLS
) -> None:
    """Count one answer, unless it went to the dashboard. `path` is None when the request
    was refused before its path could be read: that is counted (it may be a delivery)."""
    if path is None or not wants(path):
        calls.record(status)


def count_webhook_calls(app: WsgiApp, calls: WebhookCalls = WEBHOOK_CALLS) -> WsgiApp:
    """Wrap the server's WSGI app: every answer it gives outside the dashboard is counted
    (an app that raises is counted by the front, as the 500 it answers)."""

    def counted(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if wants(path):
            return app(environ, start_response)
        seen: list[int] = []

        def recording(status: str, headers: Any, exc_info: Any = None) -> Any:
            seen.append(int(status.split(" ", 1)[0]))
            return start_response(status, headers, exc_info)

        body = list(app(environ, recording))
        status = seen[0] if seen else 500
        record_webhook_answer(path, status, calls)
        return body

    return counted


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
