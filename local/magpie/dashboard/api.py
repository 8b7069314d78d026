"""The dashboard's JSON API and static files, answered beside the webhook by `magpie serve`.

Everything is read from the local bus's event log (the archive), folded incrementally into
a small in-memory view: the feed, one record per message (what it said, its analysis, the
photos received and refused, its reply and its alerts), per-minute counts for the charts,
reply outcomes and latencies. The health strip adds what is not an event: webhook calls by
status (`health.WEBHOOK_CALLS`), the bus backlog and the dead letters. The browser polls
`/api/events?after=SEQ` and `/api/summary` once a second; nothing is pushed.

Routes (GET only):
  /dashboard, /dashboard/            the page
  /dashboard/<file>                  its static files (no CDN: everything ships here)
  /api/events?after=SEQ&limit=N      feed entries after SEQ, oldest first
  /api/summary?since=T&until=T&kind=K&sentiment=S&author=A
                                     health, messages, alerts, replies and chart series
                                     (times ISO-8601, 'now' or an age like 2h; all optional)
  /api/media?key=KEY                 an image from the local blob store (thumbnails)
"""

from __future__ import annotations

import copy
import json
import logging
import math
import mimetypes
import threading
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chalicelib.alerts import ALERT_MIN_NEGATIVE_SCORE, ALERT_PATTERNS, alert_from_envelope
from chalicelib.bus.pattern import compile_pattern
from chalicelib.errors import InputError
from magpie.dashboard.health import WEBHOOK_CALLS, WebhookCalls
from magpie.dashboard.paths import FAVICON
from magpie.describe import describe, shown_entities
from magpie.stats import todays_x_spend

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MAX_FEED = 500
MAX_MESSAGES = 2000  # kept in memory for the cards and reply figures
MAX_ALERTS = 1000
MAX_CARDS = 100  # cards sent per summary (the counts cover every message kept)
MAX_MINUTES = 7 * 24 * 60  # per-minute chart history
MAX_BUCKETS = 120  # bars per chart: wider ranges get wider bars
BUCKET_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
MAX_PAGE = 500
REDRIVE_HINT = "magpie replay --dead-letters"
WAITING = "waiting"

# The page loads only its own files: message texts are attacker-controlled, so no inline
# script runs and no other origin is contacted.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    # Another site must not embed /api/media?key=... (keys follow from a date and a message
    # id) to learn from the load or its size whether a photo was received.
    "Cross-Origin-Resource-Policy": "same-origin",
}

_ALERT_MATCHERS = [(name, compile_pattern(p).matches) for name, p in ALERT_PATTERNS.items()]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


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
        "Link": None,
        "Sentiment": None,
        "SentimentNote": None,
        "Entities": [],
        "Images": [],
        "Rejected": [],
        "People": [],
        "Annotated": [],
        "Reply": {"Status": WAITING},
        "Alerts": [],
    }


def post_link(kind: str, message_id: str, author: str | None) -> str | None:
    """The post on X; a direct message has no public page."""
    if kind != "MENTION":
        return None
    return f"https://x.com/{author or 'i/web'}/status/{message_id}"


def shown_sentiment(analysis: dict[str, Any]) -> tuple[str | None, str | None]:
    """(the model's label, a note beside it when a NEGATIVE is under the alert threshold).

    The label is the one the demo prints, the lake stores and the reports count; a NEGATIVE
    whose score is under the alert rule's bar keeps its label, and the note says why it
    raised no alert."""
    label = analysis.get("TextSentiment")
    negative = (analysis.get("SentimentScore") or {}).get("Negative")
    if label != "NEGATIVE" or negative is None or negative >= ALERT_MIN_NEGATIVE_SCORE:
        return label, None
    return (
        label,
        f"below the alert threshold (Negative {negative:.2f} < {ALERT_MIN_NEGATIVE_SCORE})",
    )


def _fold_received(message: dict[str, Any], detail: dict[str, Any], time: str) -> None:
    message.update(Author=detail.get("Author"), Text=detail.get("Text"))
    message["Time"] = message["Time"] or time
    message["Link"] = post_link(message["Kind"], message["MessageId"], message["Author"])


def _fold_analysed(message: dict[str, Any], detail: dict[str, Any], time: str) -> None:
    _fold_received(message, detail, time)
    analysis = detail.get("Analysis") or {}
    message["Sentiment"], message["SentimentNote"] = shown_sentiment(analysis)
    message["Entities"] = shown_entities(analysis)
    images = analysis.get("Images") or []
    message["Images"] = [image.get("Key") for image in images if image.get("Key")]
    message["Rejected"] = [
        {"Url": r.get("Url"), "Reason": r.get("Reason")}
        for r in analysis.get("RejectedMedia") or []
    ]
    message["People"] = sorted(
        {
            face.get("Name")
            for image in images
            for face in (image.get("Analysis") or {}).get("CelebrityFaces") or []
            if face.get("Name")
        }
    )


def _fold_reply(message: dict[str, Any], kind: str, detail: dict[str, Any], time: str) -> None:
    reply = message["Reply"]
    if kind == "SEND_TWEET":
        message["Annotated"] = list(detail.get("ImageKeys") or [])
        if reply["Status"] == WAITING:  # never step back from a final status
            reply.update(Status="queued", Text=detail.get("Text"), Intent=detail.get("Intent"))
        return
    if kind == "TWEET_SENT":
        status = "dry-run" if detail.get("DryRun") else "sent"
        reply.update(Status=status, Text=detail.get("Text"), SentId=detail.get("SentId"))
        reply["Latency"] = _seconds_between(message.get("Time"), detail.get("SentAt") or time)
    elif kind == "TWEET_FAILED":
        reply.update(Status="failed", Reason=detail.get("Reason"))
    elif kind == "REPLY_SKIPPED":
        reply.update(Status="skipped", Reason=detail.get("Reason"))
    elif kind == "MESSAGE_ANALYSIS_FAILED":
        reply.update(Status="analysis failed", Reason=detail.get("Reason"))


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _seconds_between(start: str | None, end: str | None) -> float | None:
    first, last = _parse_iso(start), _parse_iso(end)
    if first is None or last is None:
        return None
    return max(0.0, (last - first).total_seconds())


@dataclass(frozen=True)
class Filters:
    """What the page asks the summary for: a time range and the cards' filters."""

    since: str = ""
    until: str = "9999-12-31T23:59:59Z"
    kind: str = ""
    sentiment: str = ""
    author: str = ""

    def in_range(self, time: str | None) -> bool:
        return bool(time) and self.since <= str(time) < self.until

    def shows(self, message: dict[str, Any]) -> bool:
        author = (message.get("Author") or "").lower()
        return (
            self.in_range(message.get("Time"))
            and (not self.kind or message["Kind"] == self.kind)
            and (not self.sentiment or message.get("Sentiment") == self.sentiment)
            and (not self.author or self.author.lower().lstrip("@") in author)
        )


class DashboardState:
    """What the page shows, kept up to date from the event log on each request."""

    def __init__(self, store: Any, media_root: Path, calls: WebhookCalls = WEBHOOK_CALLS) -> None:
        self.store = store
        self.media_root = media_root
        self.calls = calls
        self.last_seq = 0
        self.feed: deque[dict[str, Any]] = deque(maxlen=MAX_FEED)
        self.messages: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self.alerts: deque[dict[str, Any]] = deque(maxlen=MAX_ALERTS)
        self.per_type: dict[str, Counter[str]] = {}
        self.per_sentiment: dict[str, Counter[str]] = {}
        self.totals: Counter[str] = Counter()  # every original event, never evicted
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
        self.totals[kind] += 1
        _count(self.per_type, _minute(time), kind)
        detail = envelope.get("detail") or {}
        if kind == "MESSAGE_ANALYSED":
            sentiment = shown_sentiment(detail.get("Analysis") or {})[0] or "UNKNOWN"
            _count(self.per_sentiment, _minute(time), sentiment)
        self._fold_message(kind, detail, time)
        for name, matches in _ALERT_MATCHERS:
            if matches(envelope):
                alert = {"Rule": name, **alert_from_envelope(envelope)}
                self.alerts.appendleft(alert)
                self.totals["alerts"] += 1
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
            _fold_reply(message, kind, detail, time)

    # --- views ----------------------------------------------------------------------

    def events_after(self, seq: int, limit: int) -> dict[str, Any]:
        self.refresh()
        with self._lock:
            entries = [e for e in self.feed if e["seq"] > seq][:limit]
            return {"last": entries[-1]["seq"] if entries else max(seq, 0), "events": entries}

    def summary(
        self, filters: Filters | None = None, now: datetime | None = None
    ) -> dict[str, Any]:
        filters = filters or Filters()
        self.refresh()
        health = self.health()
        with self._lock:
            shown = [m for m in reversed(self.messages.values()) if filters.shows(m)]
            alerts = [a for a in self.alerts if filters.in_range(a.get("Time"))]
            series = self._series(filters, now or datetime.now(UTC))
            return {
                "last": self.last_seq,
                "totals": {
                    "events": sum(n for k, n in self.totals.items() if k != "alerts"),
                    "messages": self.totals["MESSAGE_RECEIVED"],
                    "alerts": self.totals["alerts"],
                    "shown": len(shown),
                },
                "health": health,
                "replies": reply_figures(shown),
                "messages": [copy.deepcopy(m) for m in shown[:MAX_CARDS]],
                "alerts": alerts[:MAX_CARDS],
                "series": series,
            }

    def health(self) -> dict[str, Any]:
        """Webhook calls by status, the bus backlog, dead letters and handler errors."""
        dead = self.store.dead_letters()
        per_target: dict[str, dict[str, Any]] = {}
        for letter in dead:
            entry = per_target.setdefault(letter.target, {"DeadLetters": 0, "LastError": ""})
            entry["DeadLetters"] += 1
            entry["LastError"] = (letter.last_error or "")[:300]
        return {
            "Webhook": self.calls.snapshot(),
            "Backlog": self.store.outstanding(),
            "DeadLetters": {"Count": len(dead), "RedriveHint": REDRIVE_HINT},
            "HandlerErrors": per_target,
            # The day's priced X spend against X_DAILY_BUDGET_USD (the egress budget's counter).
            "XSpend": todays_x_spend(),
        }

    def _series(self, filters: Filters, now: datetime) -> dict[str, Any]:
        minutes = sorted(
            m for m in set(self.per_type) | set(self.per_sentiment) if filters.in_range(m)
        )
        if not minutes:
            return {"buckets": [], "bucket_minutes": 1, "types": {}, "sentiment": {}}
        first, last = _parse_iso(minutes[0]), _parse_iso(minutes[-1])
        assert first is not None and last is not None  # the keys are our own ISO minutes
        start = _parse_iso(filters.since) or first
        end = min(_parse_iso(filters.until) or now, now)
        end = max(end, last + timedelta(minutes=1))
        buckets, step = continuous_buckets(start, end)
        return {
            "buckets": buckets,
            "bucket_minutes": step,
            "types": _series(self.per_type, minutes, buckets),
            "sentiment": _series(self.per_sentiment, minutes, buckets),
        }


def reply_figures(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Reply outcomes (with the reasons of the ones not sent) and latency, over `messages`."""
    outcomes: Counter[str] = Counter(m["Reply"]["Status"] for m in messages)
    reasons: Counter[str] = Counter(
        f"{m['Reply']['Status']}: {m['Reply'].get('Reason') or 'no reason given'}"
        for m in messages
        if m["Reply"]["Status"] in ("skipped", "failed", "analysis failed")
    )
    latencies = sorted(
        m["Reply"]["Latency"] for m in messages if m["Reply"].get("Latency") is not None
    )
    return {
        "Outcomes": dict(sorted(outcomes.items())),
        "Reasons": dict(reasons.most_common()),
        "Latency": _latency(latencies),
    }


def _latency(sorted_seconds: list[float]) -> dict[str, Any]:
    """Mean and p95. Event times are whole seconds, so the mean (unbiased by that cut) is
    the typical figure; a median of 0 s and 1 s differences would say 0."""
    if not sorted_seconds:
        return {"Count": 0, "MeanSeconds": None, "P95Seconds": None}
    p95 = sorted_seconds[min(len(sorted_seconds) - 1, math.ceil(0.95 * len(sorted_seconds)) - 1)]
    mean = sum(sorted_seconds) / len(sorted_seconds)
    return {"Count": len(sorted_seconds), "MeanSeconds": round(mean, 2), "P95Seconds": p95}


def continuous_buckets(start: datetime, end: datetime) -> tuple[list[str], int]:
    """Every bucket from start to end, empty ones included (idle time stays visible), at
    the narrowest width in BUCKET_MINUTES that keeps them to MAX_BUCKETS."""
    span = max(1.0, (end - start).total_seconds() / 60)
    day = BUCKET_MINUTES[-1]
    whole_days = day * math.ceil(span / MAX_BUCKETS / day)  # beyond the list: whole days
    step = next((m for m in BUCKET_MINUTES if span / m <= MAX_BUCKETS - 1), whole_days)
    first = _floor(start, step)
    count = min(MAX_BUCKETS, math.ceil((end - first).total_seconds() / 60 / step))
    return [_iso(first + timedelta(minutes=i * step)) for i in range(max(count, 1))], step


def _floor(moment: datetime, step: int) -> datetime:
    minutes = int(moment.timestamp() // 60)
    return datetime.fromtimestamp((minutes - minutes % step) * 60, UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    """Count one event; a long-running server keeps only MAX_MINUTES of minutes."""
    counts.setdefault(bucket, Counter())[name] += 1
    if len(counts) > MAX_MINUTES:
        for old in sorted(counts)[: len(counts) - MAX_MINUTES]:
            del counts[old]


def _series(
    counts: dict[str, Counter[str]], minutes: list[str], buckets: list[str]
) -> dict[str, list[int]]:
    """Per-minute counts summed into the buckets (each bucket runs to the next)."""
    import bisect

    series: dict[str, list[int]] = {}
    for minute in minutes:
        index = bisect.bisect_right(buckets, minute) - 1
        if index < 0:
            continue
        for name, n in counts.get(minute, Counter()).items():
            series.setdefault(name, [0] * len(buckets))[index] += n
    return dict(sorted(series.items()))


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
        raise InputError(f"{name} must be an integer, got {raw!r}") from exc


def filters_from(query: dict[str, list[str]], now: datetime | None = None) -> Filters:
    """The summary's filters from its query string; bad times are InputErrors."""
    from magpie.stats import parse_time

    def one(name: str) -> str:
        return query.get(name, [""])[0].strip()

    since, until = one("since"), one("until")
    return Filters(
        since=parse_time(since, now) if since else "",
        until=parse_time(until, now) if until else Filters.until,
        kind=one("kind"),
        sentiment=one("sentiment"),
        author=one("author"),
    )


class DashboardApi:
    def __init__(
        self,
        store: Any,
        media_root: Path,
        static: Path = STATIC,
        *,
        calls: WebhookCalls = WEBHOOK_CALLS,
        live: bool | None = None,
    ) -> None:
        self.state = DashboardState(store, media_root, calls)
        self.static = static.resolve()
        self._live = live

    @property
    def live(self) -> bool:
        """Whether replies are posted to X (`serve --live`) or written to the outbox."""
        if self._live is None:
            from chalicelib.config import settings

            self._live = settings().live_replies
        return self._live

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
        if route == FAVICON:
            return Response(204, b"", "text/plain")
        if route.startswith("/dashboard/"):
            return self._static(route.removeprefix("/dashboard/") or "index.html")
        try:
            if route == "/api/events":
                after = _int_param(query, "after", 0)
                limit = min(max(_int_param(query, "limit", MAX_PAGE), 1), MAX_PAGE)
                return _json(200, self.state.events_after(after, limit))
            if route == "/api/summary":
                summary = self.state.summary(filters_from(query))
                return _json(200, {**summary, "mode": "live" if self.live else "dry-run"})
        except InputError as exc:
            return _error(400, str(exc))
        if route == "/api/media":
            return self._media(query.get("key", [""])[0])
        return _error(404, f"no such path: {route}")

    def _static(self, name: str) -> Response:
        return _file(self.static, name)

    def _media(self, key: str) -> Response:
        return _file(self.state.media_root, key, images_only=True)


def _file(root: Path, name: str, *, images_only: bool = False) -> Response:
    """A file strictly inside `root` (no absolute paths, no `..`, no symlink escapes)."""
    # A NUL makes the file system calls raise ValueError (a 500); no name of ours has one.
    if not name or name.startswith("/") or ".." in Path(name).parts or "\x00" in name:
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
