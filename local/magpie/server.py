"""Serve the ingress Chalice app over HTTP, exactly as `chalice local` does."""

from __future__ import annotations

import functools
import threading
from typing import Any


def make_server(host: str, port: int, *, quiet: bool = False) -> Any:
    """Chalice's own local dev server around the ingress app (the code `chalice local` runs)."""
    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler, create_local_server

    from magpie.apps import load_app

    ingress = load_app("ingress")
    server = create_local_server(ingress.app, Config.create(app_name="magpie-ingress"), host, port)
    if quiet:

        class QuietHandler(ChaliceRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        wrapped = server.server.RequestHandlerClass  # a functools.partial with app and config
        server.server.RequestHandlerClass = functools.partial(QuietHandler, **wrapped.keywords)
    return server


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
