"""`magpie serve`'s HTTP front: the ingress Chalice app and the local dashboard on waitress.

Chalice's own local server (`chalice local`, kept for trying the CRC) is a development
server: a listen backlog of 5, one thread per connection, no read timeout, the body read
whole before any size check. Here waitress, a production WSGI server, carries the
traffic, and a small WSGI adapter hands each request to Chalice's `LocalGateway`, the API
Gateway emulation `chalice local` itself uses, so the webhook answers exactly as there.

What the front refuses before the app sees a byte of the body:
  - a `Host` that is neither the bound address nor in MAGPIE_ALLOWED_HOSTS: 421, for every
    path, the dashboard and its API included (a page on another name, pointed at this
    address by DNS rebinding, must not read the messages);
  - a `Content-Length` over the webhook's limit: 413, from the header alone;
  - a malformed request line or header (`Content-Length: abc`): 400, from waitress;
  - a request not received whole within READ_TIMEOUT seconds of its first byte: 408, then
    closed (a half-sent request, or one trickled a byte at a time, slowloris-style); a
    connection silent that long between requests is closed.
Each of these answers to a webhook request is counted by status, beside the app's own
answers, for the dashboard's health strip (`magpie.dashboard.health`). None is logged per
request: a flood of them must not bury the alerts.
Reading and writing sockets is asynchronous in waitress, so slow or stalled clients hold
a socket each, never a worker thread. At CONNECTION_LIMIT open connections the oldest idle
ones (then the oldest incomplete requests) are closed to make room, so a crowd of idle
sockets cannot keep a delivery waiting (`_shedding_server`).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("magpie.access")

# A delivery from X is a few KB and arrives whole, and X wants its answer within 3 s; a
# request still arriving after this long is stalled, by accident or on purpose.
READ_TIMEOUT = 5
# Worker threads for the app: the webhook's work is a signature check and one commit.
THREADS = 8
# Open connections at once (each costs a socket, not a thread).
CONNECTION_LIMIT = 512
# At the limit, waitress stops accepting until its sweep closes connections silent for
# READ_TIMEOUT: idle sockets would hold X's delivery in the listen backlog past its 3-second
# deadline. Instead this many connections are shed at once, idle ones first, oldest first.
SHED_AT_LIMIT = 16
IDENT = "magpie"  # the Server header: no server or Python version for a scanner to match
MAX_HOSTS_WARNED = 20
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 (names, not a bind)  # nosec B104

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def keep_private(home: Path) -> None:
    """Files this process creates are readable by their owner only (umask 077), and
    MAGPIE_HOME is a 0700 folder: DMs, photos and secrets live there."""
    os.umask(0o077)
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)


# --- the hosts we answer to -------------------------------------------------------------


def allowed_hosts(bound_host: str, configured: Iterable[str] = ()) -> frozenset[str]:
    """The names a request's Host may carry: the bound address (and `localhost` beside a
    loopback one) plus the configured names. A wildcard bind has no address of its own,
    so it answers only to configured names."""
    from chalicelib.config import ConfigError

    names = {name.lower().rstrip(".") for name in configured}
    bound = bound_host.strip("[]").lower()
    if bound not in WILDCARD_ADDRESSES:
        names.add(bound)
        if _is_loopback(bound):
            names |= LOOPBACK_NAMES
    if not names:
        raise ConfigError(
            f"environment variable MAGPIE_ALLOWED_HOSTS is required to serve on {bound_host!r}: "
            "the host names clients use to reach this server (comma-separated)"
        )
    return frozenset(names)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str | None:
    """The host name of a Host header ('Example.org:8000' -> 'example.org'), or None."""
    if not header or any(ch in header for ch in "/?#@\\ "):
        return None
    try:
        parts = urlsplit(f"//{header}")
        name, _ = parts.hostname, parts.port  # .port raises on a malformed port
    except ValueError:  # a malformed port or IPv6 literal
        return None
    return name.rstrip(".") if name else None


def refuse_other_hosts(app: WsgiApp, names: frozenset[str]) -> WsgiApp:
    warned: set[str] = set()

    def guarded(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        header = environ.get("HTTP_HOST", "")
        if host_name(header) not in names:
            # Once per name (and a bounded number of names): X's calls through a tunnel
            # or proxy refused this way need MAGPIE_ALLOWED_HOSTS, and the log says so.
            if header not in warned and len(warned) < MAX_HOSTS_WARNED:
                warned.add(header)
                logger.warning(
                    "refused a request for host %r (421): add its name to "
                    "MAGPIE_ALLOWED_HOSTS if it is yours",
                    header[:100],
                )
            return _answer(start_response, 421, b'{"error": "host not allowed"}')
        return app(environ, start_response)

    return guarded


# --- the apps behind the front ----------------------------------------------------------


def _thread_safe(app: Any) -> Any:
    """Chalice keeps the request it is handling on the app object (`current_request`), so
    two requests served at once would read each other's. Chalice has no setting for it;
    its local server swaps the app's class for `LocalChalice`, whose `current_request` is
    per thread, and so do we, with a subclass of our own (Chalice's classes stay as they
    are, so any number of servers can be made in one process)."""
    from chalice.local import LocalChalice

    if not isinstance(app, LocalChalice):
        app.__class__ = type(f"PerThread{type(app).__name__}", (LocalChalice, type(app)), {})
    return app


def chalice_wsgi(app: Any, app_name: str) -> WsgiApp:
    """A WSGI app answering through Chalice's LocalGateway, as `chalice local` does."""
    from chalice.config import Config
    from chalice.local import LocalGateway, LocalGatewayException

    gateway = LocalGateway(_thread_safe(app), Config.create(app_name=app_name))

    def serve(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)  # waitress checked it is digits
        body = environ["wsgi.input"].read(length) if length else None
        try:
            response = gateway.handle_request(
                environ["REQUEST_METHOD"], request_target(environ), _headers(environ), body
            )
        except LocalGatewayException as exc:
            return _answer(start_response, exc.CODE, exc.body or b"", exc.headers)
        return _answer_gateway(start_response, response)

    return serve


def dashboard_wsgi(dashboard: Any) -> WsgiApp:
    def serve(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        try:
            response = dashboard.handle(method, request_target(environ))
        except Exception:  # one broken view must not take the server down; logged in full
            logger.exception("dashboard failed on %s %s", method, environ.get("PATH_INFO"))
            return _answer(start_response, 500, b'{"error": "internal error; see the log"}')
        headers = {"Content-Type": response.content_type, **response.headers}
        return _answer(
            start_response, response.status, response.body, headers, send_body=method != "HEAD"
        )

    return serve


def route(dashboard: WsgiApp | None, webhook: WsgiApp) -> WsgiApp:
    from magpie.dashboard.paths import wants

    def routed(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if dashboard is not None and wants(environ.get("PATH_INFO", "")):
            return dashboard(environ, start_response)
        return webhook(environ, start_response)

    return routed


def access_log(app: WsgiApp) -> WsgiApp:
    """One line per request (method, path without its query, status, time): `-v` only."""

    def logged(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        seen: list[str] = []

        def recording(status: str, headers: Any, exc_info: Any = None) -> Any:
            seen.append(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        result = app(environ, recording)
        access_logger.info(
            "%s %s %s %.1fms",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
            seen[0] if seen else "-",
            (time.perf_counter() - started) * 1000,
        )
        return result

    return logged


def request_target(environ: Environ) -> str:
    """The path and query as sent ('/twitter?crc_token=a%2Bb'), rebuilt from WSGI's
    decoded PATH_INFO (bytes carried as latin-1 strings, PEP 3333)."""
    raw = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1")
    path = quote(raw, safe="/:@!$&'()*+,;=-._~") or "/"
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def _headers(environ: Environ) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _answer_gateway(start_response: StartResponse, response: dict[str, Any]) -> list[bytes]:
    import base64

    body = response.get("body") or b""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body)
    headers: list[tuple[str, str]] = list((response.get("headers") or {}).items())
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.extend((name, value) for value in values)
    return _answer(start_response, response["statusCode"], body, headers)


def _answer(
    start_response: StartResponse,
    status: int,
    body: str | bytes,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    *,
    send_body: bool = True,
) -> list[bytes]:
    """Start the response; Content-Length is always the body's (for HEAD too, unsent)."""
    from http import HTTPStatus

    data = body.encode() if isinstance(body, str) else body
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if not any(name.lower() == "content-type" for name, _ in pairs):
        pairs.append(("Content-Type", "application/json"))
    pairs = [(n, str(v)) for n, v in pairs if n.lower() != "content-length"]
    pairs.append(("Content-Length", str(len(data))))
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    start_response(f"{status} {phrase}", pairs)
    return [data] if send_body else []


# --- the server ---------------------------------------------------------------------------


def webhook_app(host: str, *, dashboard: bool = True, verbose: bool = False) -> WsgiApp:
    """The whole front as one WSGI app: Host check, then the dashboard or the webhook."""
    from chalicelib.config import settings
    from magpie.apps import load_app
    from magpie.dashboard.health import count_webhook_calls

    webhook = chalice_wsgi(load_app("ingress").app, "magpie-ingress")
    board = dashboard_wsgi(_dashboard_api()) if dashboard else None
    app = refuse_other_hosts(route(board, webhook), allowed_hosts(host, settings().allowed_hosts))
    app = count_webhook_calls(app)  # the dashboard's health strip: webhook calls by status
    return access_log(app) if verbose else app


def _dashboard_api() -> Any:
    from chalicelib import backend
    from chalicelib.config import settings
    from magpie.dashboard.api import DashboardApi

    return DashboardApi(backend.local_bus_store(), settings().home / "media")


@functools.cache
def _counted_error_task() -> type:
    """waitress's task for the answers it gives itself (a request's `error`: 400, 413, 431,
    501, or 500 when the app raised), counting each as a webhook answer. A channel's
    `error_task_class` is where waitress takes it from."""
    from waitress.task import ErrorTask

    from magpie.dashboard.health import record_webhook_answer

    class CountedErrorTask(ErrorTask):
        def execute(self) -> None:
            super().execute()
            request: Any = self.request  # the parser, with the `error` waitress set on it
            record_webhook_answer(
                getattr(request, "path", None),  # unset when the request line was unreadable
                request.error.code,
            )

    return CountedErrorTask


@functools.cache
def _request_timeout_error() -> type:
    from waitress.utilities import Error

    class RequestTimeout(Error):
        code = 408
        reason = "Request Timeout"

    return RequestTimeout


@functools.cache
def _deadline_channel() -> type:
    """waitress's connection class, with READ_TIMEOUT counted from a request's first byte.

    waitress closes a connection after `channel_timeout` seconds without a byte received,
    so a client sending one byte every few seconds would never be closed. While a request
    is incomplete, this keeps the connection's "last activity" at the moment that request
    began, so the same sweep closes it once the request has taken READ_TIMEOUT. Such a
    request is answered 408 before the close (so the client and the counts know why),
    through the same error task as waitress's other refusals. A server's `channel_class`
    is where waitress takes its connection class from."""
    from waitress.channel import HTTPChannel

    class WholeRequestDeadline(HTTPChannel):
        error_task_class = _counted_error_task()
        request_began = 0.0

        def received(self, data: bytes) -> bool:
            before = self.request
            result: bool = super().received(data)
            if self.request is not None:  # a request still incomplete
                if self.request is not before:  # these bytes began it (maybe after the
                    self.request_began = time.time()  # end of the one before)
                self.last_activity = self.request_began
            return result

        def handle_write(self) -> None:
            # The sweep marks an overdue channel `will_close`; waitress then flushes what
            # is queued and closes it, here, on the server's thread.
            if self.will_close and self._request_overdue():
                self._answer_timeout()
            super().handle_write()

        def _request_overdue(self) -> bool:
            return (
                self.connected  # not a client that hung up, nor a server shutting down
                and self.request is not None
                and not self.requests  # none being answered
                and time.time() - self.request_began >= self.adj.channel_timeout
            )

        def _answer_timeout(self) -> None:
            request: Any = self.request
            self.request = None
            request.error = _request_timeout_error()(
                f"not received whole within {self.adj.channel_timeout} s"
            )
            self.error_task_class(self, request).service()

    return WholeRequestDeadline


def _sheddable(channels: Iterable[Any], count: int) -> list[Any]:
    """The `count` connections to close first: idle ones (no request begun), then those
    still receiving a request, oldest activity first; never one whose request is being
    answered or whose answer is still being written."""
    candidates = [
        channel
        for channel in channels
        if not channel.requests and not channel.total_outbufs_len and not channel.will_close
    ]
    candidates.sort(key=lambda channel: (channel.request is not None, channel.last_activity))
    return candidates[:count]


@functools.cache
def _shedding_server() -> type:
    """waitress's TCP server that, at its connection limit, closes the oldest idle
    connections instead of no longer accepting (waitress's own behaviour)."""
    from waitress.server import TcpWSGIServer

    class SheddingServer(TcpWSGIServer):
        def readable(self) -> bool:
            server: Any = self  # waitress's attributes are untyped
            over = len(server._map) - server.adj.connection_limit
            if server.accepting and over >= 0:
                for channel in _sheddable(server.active_channels.values(), over + SHED_AT_LIMIT):
                    channel.will_close = True  # closed by the loop on its next pass
            return bool(super().readable())

    return SheddingServer


class WebhookServer:
    """waitress serving `webhook_app`, stoppable from another thread."""

    POLL_SECONDS = 0.2  # how soon serve_forever notices shutdown()

    def __init__(
        self, host: str, port: int, *, dashboard: bool = True, verbose: bool = False
    ) -> None:
        from waitress.server import TcpWSGIServer, create_server

        from chalicelib.ingress.webhook import MAX_BODY_BYTES

        self._map: dict[int, Any] = {}
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._server = create_server(
            webhook_app(host, dashboard=dashboard, verbose=verbose),
            map=self._map,
            host=host,
            port=port,
            threads=THREADS,
            connection_limit=CONNECTION_LIMIT,
            channel_timeout=READ_TIMEOUT,
            cleanup_interval=1,
            # waitress refuses a Content-Length >= this from the header, before the body.
            max_request_body_size=MAX_BODY_BYTES + 1,
            max_request_header_size=64 * 1024,
            ident=IDENT,
            expose_tracebacks=False,
        )
        # One host and port make one listening socket (waitress's multi-socket server is for
        # several `listen` addresses, which we never pass).
        if not isinstance(self._server, TcpWSGIServer):
            raise TypeError(f"expected one TCP listener, got {type(self._server).__name__}")
        self._server.channel_class = _deadline_channel()
        # The same object, with readable() shedding idle connections at the limit (waitress
        # builds its server inside create_server, so the class is swapped after).
        self._server.__class__ = _shedding_server()
        self.host = host
        self.port = int(self._server.getsockname()[1])

    def serve_forever(self) -> None:
        from waitress import wasyncore

        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=self.POLL_SECONDS, map=self._map, use_poll=True, count=1)
        finally:
            self._server.task_dispatcher.shutdown()
            wasyncore.close_all(self._map)
            self._stopped.set()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop serving; returns once the server thread has closed every socket."""
        self._stop.set()
        self._stopped.wait(timeout)


def make_server(
    host: str, port: int, *, verbose: bool = False, dashboard: bool = True
) -> WebhookServer:
    return WebhookServer(host, port, dashboard=dashboard, verbose=verbose)


class BackgroundServer:
    """The webhook server on a thread; port 0 picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False) -> None:
        self.server = make_server(host, port, verbose=verbose)
        self.host = host
        self.port = self.server.port
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="webhook-server", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/twitter"

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self._thread.join(timeout=5)
