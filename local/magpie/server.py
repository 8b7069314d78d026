"""Serve the ingress Chalice app over HTTP, exactly as `chalice local` does, and beside it
the local dashboard (/dashboard and its JSON API under /api/)."""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

logger = logging.getLogger(__name__)


def make_server(host: str, port: int, *, quiet: bool = False, dashboard: bool = True) -> Any:
    """Chalice's own local dev server around the ingress app (the code `chalice local` runs).

    With `dashboard`, requests for /dashboard* and /api/* are answered by the dashboard
    (over the local bus configured in the environment); every other request reaches the
    ingress app unchanged."""
    from chalice.config import Config
    from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

    from magpie.apps import load_app

    app = load_app("ingress").app
    if not isinstance(app, LocalChalice):
        # What chalice.local.create_local_server does, but once per process: doing it again
        # on the (cached) app makes an inheritance cycle, so a second server failed.
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    handler = functools.partial(
        _handler_class(), dashboard=_dashboard_api() if dashboard else None, quiet=quiet
    )
    config = Config.create(app_name="magpie-ingress")
    return LocalDevServer(app, config, host, port, handler_cls=handler)


def _dashboard_api() -> Any:
    from chalicelib import backend
    from chalicelib.config import settings
    from magpie.dashboard.api import DashboardApi

    return DashboardApi(backend.local_bus_store(), settings().home / "media")


def _server_error() -> Any:
    from magpie.dashboard.api import Response

    return Response(500, b'{"error": "internal error; see the server log"}')


@functools.cache
def _handler_class() -> type:
    """ChaliceRequestHandler, with the dashboard's paths answered before the gateway's."""
    from chalice.local import ChaliceRequestHandler

    from magpie.dashboard.api import wants

    class MagpieRequestHandler(ChaliceRequestHandler):
        def __init__(self, *args: Any, dashboard: Any, quiet: bool, **kwargs: Any) -> None:
            # Set before the base __init__, which handles the request there and then.
            self.dashboard = dashboard
            self.quiet = quiet
            super().__init__(*args, **kwargs)

        def _dispatch(self) -> None:
            if self.dashboard is not None and wants(self.path):
                self._answer_dashboard()
            else:
                self._generic_handle()

        def _answer_dashboard(self) -> None:
            length = int(self.headers.get("content-length", "0") or 0)
            if length:
                self.rfile.read(length)  # keep the kept-alive connection in step
            try:
                response = self.dashboard.handle(self.command, self.path)
            except Exception:
                logger.exception("dashboard failed on %s %s", self.command, self.path)
                response = _server_error()
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        def log_message(self, format: str, *args: Any) -> None:
            if not self.quiet:
                super().log_message(format, *args)

        # The base class binds every verb to its own handler; rebind them to ours.
        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    return MagpieRequestHandler


class BackgroundServer:
    """The webhook server on a thread; port 0 picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True) -> None:
        self.server = make_server(host, port, quiet=quiet)
        self.host = host
        self.port = self.server.server.server_address[1]
        self._thread = threading.Thread(target=self.server.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/twitter"

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server.server_close()
        self._thread.join(timeout=5)
