"""A stand-in for X's API v2 on loopback: it accepts what egress posts and records it.

Answers the three calls egress makes (a post, a direct message, a media upload) with the
shapes X documents, each with a new id, and keeps every request so a test can see what the
deployed system sent. Anything else is a 404, as X answers an unknown route.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DM_ROUTE = re.compile(r"^/2/dm_conversations/with/(\d+)/messages$")


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class XStub:
    requests: list[Received] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1990000000000000001))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = stub.answer(
                    Received("POST", self.path, dict(self.headers.items()), body)
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads `requests` instead."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def answer(self, request: Received) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(request)
            new_id = str(next(self._ids))
        if request.path == "/2/tweets":
            return 201, {"data": {"id": new_id, "text": request.json().get("text", "")}}
        if DM_ROUTE.match(request.path):
            return 201, {"data": {"dm_conversation_id": new_id, "dm_event_id": new_id}}
        if request.path == "/2/media/upload":
            return 200, {"data": {"id": new_id, "media_key": f"3_{new_id}"}}
        return 404, {"title": "Not Found Error", "detail": f"no route {request.path}"}

    def posts(self) -> list[dict[str, Any]]:
        """The bodies of the posts (replies) received so far."""
        with self._lock:
            return [r.json() for r in self.requests if r.path == "/2/tweets"]
