"""The dashboard's JSON API and static files, answered beside the webhook by `magpie serve`.

Everything is read from the local bus's event log (the archive), folded incrementally into
a small in-memory view: the feed, one record per message (what it said, its analysis, its
reply and its alerts), and per-minute counts for the charts. The browser polls
`/api/events?after=SEQ` and `/api/summary` once a second; nothing is pushed.

Routes (GET only):
  /dashboard, /dashboard/            the page
  /dashboard/<file>                  its static files (no CDN: everything ships here)
  /api/events?after=SEQ&limit=N      feed entries after SEQ, oldest first
  /api/summary                       messages, alerts and chart series
  /api/media?key=KEY                 an image from the local blob store (thumbnails)
"""

from __future__ import annotations

import copy
import json
import logging
import mimetypes
import threading
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chalicelib.alerts import ALERT_PATTERNS, alert_from_envelope
from chalicelib.bus.pattern import compile_pattern
from magpie.demo import describe

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MAX_FEED = 500
MAX_MESSAGES = 100
MAX_ALERTS = 100
MAX_BUCKETS = 120  # minutes of chart history
MAX_PAGE = 500

# The page loads only its own files: message texts are attacker-controlled, so no inline
# script runs and no other origin is contacted.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

_ALERT_MATCHERS = [(name, compile_pattern(p).matches) for name, p in ALERT_PATTERNS.items()]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def wants(path: str) -> bool:
    """True for the paths the dashboard answers; everything else goes to the webhook app."""
    route = urlsplit(path).path
    return route == "/dashboard" or route.startswith(("/dashboard/", "/api/"))


# --- folding events into the dashboard's view -------------------------------------------


def _minute(time: str) -> str:
    return time[:16] + ":00Z" if len(time) >= 16 else time


def _new_message(kind: str, message_id: str) -> dict[str, Any]:
    return {
        "MessageId": message_id,
        "Kind": kind,
        "Author": None,
        "Text": None,
        "Time": None,
        "Sentiment": None,
        "Images": [],
        "People": [],
        "Annotated": [],
        "Reply": {"Status": "waiting"},
        "Alerts": [],
    }


def _fold_received(message: dict[str, Any], detail: dict[str, Any], time: str) -> None:
    message.update(Author=detail.get("Author"), Text=detail.get("Text"))
    message["Time"] = message["Time"] or time


def _fold_analysed(message: dict[str, Any], detail: dict[str, Any], time: str) -> None:
    _fold_received(message, detail, time)
    analysis = detail.get("Analysis") or {}
    message["Sentiment"] = analysis.get("TextSentiment")
    images = analysis.get("Images") or []
    message["Images"] = [image.get("Key") for image in images if image.get("Key")]
    message["People"] = sorted(
        {
            face.get("Name")
            for image in images
            for face in (image.get("Analysis") or {}).get("CelebrityFaces") or []
            if face.get("Name")
        }
    )


def _fold_reply(message: dict[str, Any], kind: str, detail: dict[str, Any]) -> None:
    reply = message["Reply"]
    if kind == "SEND_TWEET":
        message["Annotated"] = list(detail.get("ImageKeys") or [])
        if reply["Status"] == "waiting":  # never step back from a final status
            reply.update(Status="queued", Text=detail.get("Text"), Intent=detail.get("Intent"))
        return
    if kind == "TWEET_SENT":
        status = "dry-run" if detail.get("DryRun") else "sent"
        reply.update(Status=status, Text=detail.get("Text"), SentId=detail.get("SentId"))
    elif kind == "TWEET_FAILED":
        reply.update(Status="failed", Reason=detail.get("Reason"))
    elif kind == "REPLY_SKIPPED":
        reply.update(Status="skipped", Reason=detail.get("Reason"))
    elif kind == "MESSAGE_ANALYSIS_FAILED":
        reply.update(Status="analysis failed", Reason=detail.get("Reason"))


class DashboardState:
    """What the page shows, kept up to date from the event log on each request."""

    def __init__(self, store: Any, media_root: Path) -> None:
        self.store = store
        self.media_root = media_root
        self.last_seq = 0
        self.feed: deque[dict[str, Any]] = deque(maxlen=MAX_FEED)
        self.messages: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self.alerts: deque[dict[str, Any]] = deque(maxlen=MAX_ALERTS)
        self.per_type: dict[str, Counter[str]] = {}
        self.per_sentiment: dict[str, Counter[str]] = {}
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self._lock:
            for seq, envelope in self.store.events_since(self.last_seq):
                try:
                    self._fold(seq, envelope)
                except Exception as exc:
                    # One event the page cannot show must not stop it showing the rest:
                    # logged with its traceback, and still listed in the feed.
                    logger.exception(
                        "dashboard: cannot fold event %s (seq %d)", envelope.get("id"), seq
                    )
                    if not self.feed or self.feed[-1]["seq"] != seq:
                        note = f"(cannot show this event: {type(exc).__name__})"
                        self.feed.append(_feed_entry(seq, envelope, note))
                self.last_seq = seq

    def _fold(self, seq: int, envelope: dict[str, Any]) -> None:
        kind = str(envelope.get("detail-type"))
        time = str(envelope.get("time", ""))
        replay = envelope.get("replay-name")
        self.feed.append(_feed_entry(seq, envelope, describe(envelope)[len(kind) :].strip()))
        if replay:  # a copy of an original already folded in
            return
        _count(self.per_type, _minute(time), kind)
        detail = envelope.get("detail") or {}
        if kind == "MESSAGE_ANALYSED":
            sentiment = (detail.get("Analysis") or {}).get("TextSentiment") or "UNKNOWN"
            _count(self.per_sentiment, _minute(time), sentiment)
        self._fold_message(kind, detail, time)
        for name, matches in _ALERT_MATCHERS:
            if matches(envelope):
                alert = {"Rule": name, **alert_from_envelope(envelope)}
                self.alerts.appendleft(alert)
                message = self._message(detail)
                if message is not None:
                    message["Alerts"].append(alert["Kind"])

    def _message(self, detail: dict[str, Any]) -> dict[str, Any] | None:
        message_id, kind = detail.get("MessageId"), detail.get("Kind")
        if not message_id or not kind:
            return None  # raw TWITTER_* events are not messages
        key = (str(kind), str(message_id))
        if key not in self.messages:
            self.messages[key] = _new_message(*key)
            while len(self.messages) > MAX_MESSAGES:
                self.messages.popitem(last=False)
        return self.messages[key]

    def _fold_message(self, kind: str, detail: dict[str, Any], time: str) -> None:
        message = self._message(detail)
        if message is None:
            return
        if kind == "MESSAGE_RECEIVED":
            _fold_received(message, detail, time)
        elif kind == "MESSAGE_ANALYSED":
            _fold_analysed(message, detail, time)
        else:
            _fold_reply(message, kind, detail)

    # --- views ----------------------------------------------------------------------

    def events_after(self, seq: int, limit: int) -> dict[str, Any]:
        self.refresh()
        with self._lock:
            entries = [e for e in self.feed if e["seq"] > seq][:limit]
            return {"last": entries[-1]["seq"] if entries else max(seq, 0), "events": entries}

    def summary(self) -> dict[str, Any]:
        self.refresh()
        with self._lock:
            buckets = sorted(set(self.per_type) | set(self.per_sentiment))[-MAX_BUCKETS:]
            return {
                "last": self.last_seq,
                "messages": [copy.deepcopy(m) for m in reversed(self.messages.values())],
                "alerts": list(self.alerts),
                "series": {
                    "buckets": buckets,
                    "types": _series(self.per_type, buckets),
                    "sentiment": _series(self.per_sentiment, buckets),
                },
            }


def _feed_entry(seq: int, envelope: dict[str, Any], summary: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "id": envelope.get("id"),
        "detail-type": str(envelope.get("detail-type")),
        "source": envelope.get("source"),
        "time": str(envelope.get("time", "")),
        "replay": envelope.get("replay-name"),
        "summary": summary,
    }


def _count(counts: dict[str, Counter[str]], bucket: str, name: str) -> None:
    """Count one event; a long-running server keeps only the buckets the charts can show."""
    counts.setdefault(bucket, Counter())[name] += 1
    if len(counts) > MAX_BUCKETS:
        for old in sorted(counts)[: len(counts) - MAX_BUCKETS]:
            del counts[old]


def _series(counts: dict[str, Counter[str]], buckets: list[str]) -> dict[str, list[int]]:
    names = sorted({name for bucket in buckets for name in counts.get(bucket, {})})
    return {name: [counts.get(b, Counter())[name] for b in buckets] for name in names}


# --- HTTP -------------------------------------------------------------------------------


def _json(status: int, payload: Any) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status, body, "application/json; charset=utf-8")


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
    raw = query.get(name, [str(default)])[0]
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


class DashboardApi:
    def __init__(self, store: Any, media_root: Path, static: Path = STATIC) -> None:
        self.state = DashboardState(store, media_root)
        self.static = static.resolve()

    def handle(self, method: str, path: str) -> Response:
        response = self._route(method, path)
        return Response(
            response.status,
            response.body,
            response.content_type,
            {**SECURITY_HEADERS, **response.headers},
        )

    def _route(self, method: str, path: str) -> Response:
        parts = urlsplit(path)
        route, query = parts.path, parse_qs(parts.query)
        if method not in ("GET", "HEAD"):
            return Response(405, b"", "text/plain", {"Allow": "GET, HEAD"})
        if route == "/dashboard":
            return Response(302, b"", "text/plain", {"Location": "/dashboard/"})
        if route.startswith("/dashboard/"):
            return self._static(route.removeprefix("/dashboard/") or "index.html")
        try:
            if route == "/api/events":
                after = _int_param(query, "after", 0)
                limit = min(max(_int_param(query, "limit", MAX_PAGE), 1), MAX_PAGE)
                return _json(200, self.state.events_after(after, limit))
        except ValueError as exc:
            return _error(400, str(exc))
        if route == "/api/summary":
            return _json(200, self.state.summary())
        if route == "/api/media":
            return self._media(query.get("key", [""])[0])
        return _error(404, f"no such path: {route}")

    def _static(self, name: str) -> Response:
        return _file(self.static, name)

    def _media(self, key: str) -> Response:
        return _file(self.state.media_root, key, images_only=True)


def _file(root: Path, name: str, *, images_only: bool = False) -> Response:
    """A file strictly inside `root` (no absolute paths, no `..`, no symlink escapes)."""
    if not name or name.startswith("/") or ".." in Path(name).parts:
        return _error(400, "invalid path")
    base = root.resolve()
    target = (base / name).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        return _error(404, f"not found: {name}")
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if images_only and not content_type.startswith("image/"):
        return _error(404, f"not an image: {name}")
    if content_type.startswith("text/") or content_type.endswith("javascript"):
        content_type += "; charset=utf-8"
    return Response(200, target.read_bytes(), content_type)
