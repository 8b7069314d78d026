"""Alerts: negative messages, failed analyses and failed replies, for a human to look at.

On AWS an EventBridge rule feeds the SNS topic (infrastructure) and the core app forwards
each SNS message to an optional Slack-compatible webhook. Locally the same alert is printed
and appended to `MAGPIE_HOME/alerts.jsonl`. An alert carries the author, the text, the
score and a link, never credentials or whole payloads.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chalicelib.display import escape_controls
from chalicelib.errors import UnavailableError
from chalicelib.sqlite_file import SqliteFile

logger = logging.getLogger(__name__)
# urllib3 logs every request line (the URL path) at DEBUG, and the alert webhook's path is
# its credential.
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)

MAX_TEXT = 500
MAX_WEBHOOK_TEXT = 3000  # one Slack message, comfortably under its 40,000 characters


# What X allows in a handle (and a message id): shown as is; anything else is quoted.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]{1,50}")


def post_link(author: str | None, tweet_id: str | None) -> str | None:
    """A link to the post on x.com; the author and id are URL-quoted, so neither can move
    the link to another host or add a line."""
    if not tweet_id:
        return None
    return (
        f"https://x.com/{quote(str(author or 'i'), safe='')}/status/{quote(str(tweet_id), safe='')}"
    )


def negative_message_alert(detail: dict[str, Any]) -> dict[str, Any]:
    analysis = detail.get("Analysis") or {}
    twitter = detail.get("Twitter") or {}
    score = (analysis.get("SentimentScore") or {}).get("Negative")
    return {
        "Kind": "NEGATIVE_MESSAGE",
        "MessageId": detail.get("MessageId"),
        "Author": detail.get("Author"),
        "Text": str(detail.get("Text", ""))[:MAX_TEXT],
        "Sentiment": analysis.get("TextSentiment"),
        "NegativeScore": score,
        "Link": post_link(detail.get("Author"), twitter.get("TweetId")),
    }


def analysis_failed_alert(detail: dict[str, Any]) -> dict[str, Any]:
    twitter = detail.get("Twitter") or {}
    return {
        "Kind": "ANALYSIS_FAILED",
        "MessageId": detail.get("MessageId"),
        "Author": detail.get("Author"),
        "Text": str(detail.get("Text", ""))[:MAX_TEXT],
        "Reason": detail.get("Reason"),
        "Link": post_link(detail.get("Author"), twitter.get("TweetId")),
    }


def reply_failed_alert(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "Kind": "REPLY_FAILED",
        "MessageId": detail.get("MessageId"),
        "Reason": detail.get("Reason"),
        "StatusCode": detail.get("StatusCode"),
    }


ALERT_BUILDERS = {
    "MESSAGE_ANALYSED": negative_message_alert,
    "MESSAGE_ANALYSIS_FAILED": analysis_failed_alert,
    "TWEET_FAILED": reply_failed_alert,
}

# The local e5 head is trained with balanced class weights, so it says NEGATIVE more often
# than tweets are negative (precision 0.49 on TweetEval validation). Alerting only from this
# Negative score up keeps alerts worth reading (0.76 precision there; Comprehend's clear
# negatives score well above it). See chalicelib/analysis/models/README.md.
ALERT_MIN_NEGATIVE_SCORE = 0.6

# The same patterns the infrastructure's SNS rules use (infra reads them from here).
ALERT_PATTERNS: dict[str, dict[str, Any]] = {
    "negative": {
        "source": ["magpie.analysis"],
        "detail-type": ["MESSAGE_ANALYSED"],
        "detail": {
            "Analysis": {
                "TextSentiment": ["NEGATIVE"],
                "SentimentScore": {"Negative": [{"numeric": [">=", ALERT_MIN_NEGATIVE_SCORE]}]},
            }
        },
    },
    "analysis_failed": {
        "source": ["magpie.analysis"],
        "detail-type": ["MESSAGE_ANALYSIS_FAILED"],
    },
    # A 401 is alerted by egress itself (it knows the credentials are wrong); every other
    # final failure is alerted through this rule, so each failure alerts exactly once.
    "reply_failed": {
        "source": ["magpie.egress"],
        "detail-type": ["TWEET_FAILED"],
        "detail": {"Reason": [{"anything-but": "unauthorized"}]},
    },
}


def alert_from_envelope(envelope: dict[str, Any]) -> dict[str, Any]:
    builder = ALERT_BUILDERS[envelope["detail-type"]]
    alert = builder(envelope.get("detail") or {})
    alert["Time"] = envelope.get("time")
    return alert


def summary(alert: dict[str, Any]) -> str:
    """One human line: what happened, who, and where to look. The author's and the text's
    control characters (ANSI escapes, newlines) are shown as escapes, never sent to a terminal."""
    return escape_controls(_summary(alert))


def _summary(alert: dict[str, Any]) -> str:
    parts = [f"[{alert.get('Kind')}]"]
    if alert.get("Author"):
        parts.append(f"@{alert['Author']}")
    if alert.get("NegativeScore") is not None:
        parts.append(f"negative {alert['NegativeScore']:.2f}")
    if alert.get("Reason"):
        parts.append(f"reason: {alert['Reason']}")
    if alert.get("Text"):
        parts.append(repr(alert["Text"][:140]))
    if alert.get("Link"):
        parts.append(alert["Link"])
    return " ".join(parts)


class LocalAlertSink:
    """alerts.jsonl, append-only. An alert raised with a `key` is written once per key, even
    when the process is killed after its line is appended and before the caller records
    that it was: the sink keeps its own record beside the file (alerts-raised.sqlite), made
    before the line is appended, and checks the bytes at the recorded offset on a retry."""

    def __init__(self, path: Path, stream: Any = None) -> None:
        self.path = path
        self._stream = stream
        self._console = True
        self._raised: SqliteFile | None = None

    def mute_console(self) -> None:
        """Keep writing alerts.jsonl but print nothing (the demo prints alerts itself)."""
        self._console = False

    def raise_alert(self, alert: dict[str, Any], key: str | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(alert, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # One writer at a time, across threads and processes: the offset a line is
            # recorded at is then the offset it is written at.
            fcntl.flock(fd, fcntl.LOCK_EX)
            if key is not None and not self._claim(fd, key, line):
                return
            os.write(fd, line)
        finally:
            os.close(fd)  # releases the lock
        if self._console:
            print(f"ALERT {summary(alert)}", file=self._stream or sys.stderr, flush=True)

    def _claim(self, fd: int, key: str, line: bytes) -> bool:
        """Whether this key's line still has to be written; records where it will go."""
        digest = hashlib.sha256(line).hexdigest()
        offset = os.fstat(fd).st_size
        with self._raised_file().connect() as db:
            row = db.execute(
                "SELECT offset, length, digest FROM raised WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and _holds(fd, row[0], row[1], row[2]):
                return False  # written before (a retry after a crash, or a redelivery)
            db.execute(
                "INSERT OR REPLACE INTO raised (key, offset, length, digest) VALUES (?, ?, ?, ?)",
                (key, offset, len(line), digest),
            )
        return True

    def _raised_file(self) -> SqliteFile:
        if self._raised is None:
            self._raised = SqliteFile(
                self.path.with_name("alerts-raised.sqlite"),
                "CREATE TABLE IF NOT EXISTS raised ("
                "key TEXT PRIMARY KEY, offset INTEGER, length INTEGER, digest TEXT)",
            )
        return self._raised

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


def _holds(fd: int, offset: int, length: int, digest: str) -> bool:
    """Whether the file holds, at `offset`, the line whose SHA-256 is `digest`. A record
    whose line never reached the file (killed before the append) points at another line,
    or past the end."""
    written = os.pread(fd, length, offset)
    return len(written) == length and hashlib.sha256(written).hexdigest() == digest


class SnsAlertSink:
    """Publishes alerts raised in code (e.g. egress 401s) to the same topic the rules feed."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def raise_alert(self, alert: dict[str, Any], key: str | None = None) -> None:
        # SNS has no de-duplication on a standard topic: `key` is the local sink's (see
        # docs/ARCHITECTURE.md on alerts and redelivery).
        self._client.publish(
            TopicArn=self._topic_arn,
            Subject=f"Magpie alert: {alert.get('Kind')}"[:100],
            Message=json.dumps(alert, ensure_ascii=False),
        )


class AlertForwardError(UnavailableError, RuntimeError):
    """The alert webhook refused or could not be reached (its URL is never in the message)."""


def slack_escape(text: str) -> str:
    """Slack's three control characters as entities: `<!channel>` cannot ping anyone and
    `<https://evil|label>` cannot hide a link behind a label."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_text(message: str, subject: str | None = None) -> str:
    """What the webhook shows for one SNS message on the alert topic, whoever wrote it:
    a CloudWatch alarm's JSON, an alert raised in code (ours: it has a `Kind`), an event
    EventBridge delivered whole, or the text a rule's input transformer wrote (a JSON
    string). Every part that came from outside is escaped."""
    try:
        parsed: Any = json.loads(message)
    except ValueError:
        parsed = message
    if isinstance(parsed, dict) and "AlarmName" in parsed and "NewStateValue" in parsed:
        return _alarm_text(parsed)
    if isinstance(parsed, dict) and parsed.get("detail-type") in ALERT_BUILDERS:
        parsed = alert_from_envelope(parsed)
    if isinstance(parsed, dict) and parsed.get("Kind"):
        return _alert_text(parsed)
    text = parsed if isinstance(parsed, str) else json.dumps(parsed, ensure_ascii=False)
    heading = f"Magpie alert: {subject}" if subject else "Magpie alert"
    return f"{slack_escape(heading)}\n{slack_escape(text[:MAX_WEBHOOK_TEXT])}"


def _alarm_text(alarm: dict[str, Any]) -> str:
    name = alarm.get("AlarmName")
    state = alarm.get("NewStateValue")
    lines = [f"Magpie alarm {name} is {state} (was {alarm.get('OldStateValue')})"]
    if alarm.get("AlarmDescription"):
        lines.append(str(alarm["AlarmDescription"]))
    lines.append(f"Reason: {alarm.get('NewStateReason')}")
    return slack_escape("\n".join(lines)[:MAX_WEBHOOK_TEXT])


def _alert_text(alert: dict[str, Any]) -> str:
    """One line per field. Every value is kept on its line (control characters escaped),
    and the values a stranger writes (the text; an author that is not a plain handle) are
    quoted as inline code, where Slack renders no link and no formatting."""
    lines = [f"Magpie alert [{_field(alert['Kind'])}]"]
    if alert.get("Author"):
        lines[0] += f" from @{_name(alert['Author'])}"
    if isinstance(alert.get("NegativeScore"), int | float):
        lines.append(f"Negative score: {alert['NegativeScore']:.2f}")
    if alert.get("Reason"):
        status = f" (HTTP {_field(alert['StatusCode'])})" if alert.get("StatusCode") else ""
        lines.append(f"Reason: {_field(alert['Reason'])}{status}")
    if alert.get("Text"):
        lines.append(f"Text: {_quoted(str(alert['Text'])[:MAX_TEXT])}")
    if alert.get("Link"):
        lines.append(_field(alert["Link"]))
    if alert.get("MessageId"):
        lines.append(f"Message id: {_name(alert['MessageId'])}")
    return slack_escape("\n".join(lines)[:MAX_WEBHOOK_TEXT])


def _field(value: Any) -> str:
    return escape_controls(str(value))


def _name(value: Any) -> str:
    text = str(value)
    return text if _PLAIN_NAME.fullmatch(text) else _quoted(text)


def _quoted(text: str) -> str:
    """Inline code on one line: a backtick in the text would end it, so it becomes a
    modifier letter grave accent (U+02CB), which looks the same."""
    return "`" + escape_controls(text).replace("`", "\u02cb") + "`"


def forward_to_webhook(alert: dict[str, Any], url: str, timeout: float = 5.0) -> None:
    """POST one alert raised in code as a Slack-compatible message."""
    post_to_webhook(_alert_text(alert), url, timeout)


def post_to_webhook(text: str, url: str, timeout: float = 5.0) -> None:
    """POST a Slack-compatible {"text": ...} message; raises on a non-2xx answer."""
    import requests

    # The URL is a credential (Slack-style webhooks): requests' errors quote it, so neither
    # their message nor their chain may leave this function.
    try:
        response = requests.post(url, json={"text": text}, timeout=timeout)
    except requests.RequestException as exc:
        raise AlertForwardError(f"alert webhook unreachable ({type(exc).__name__})") from None
    if not response.ok:
        raise AlertForwardError(f"alert webhook answered {response.status_code}")


def forward_sns_message(message: str, subject: str | None = None) -> bool:
    """The core app's SNS fan-out: forward to the alert webhook when one is configured.

    Returns False when no webhook is configured (e-mail subscribers still get the alert)."""
    from chalicelib.secrets import alert_webhook_url

    url = alert_webhook_url()
    if not url:
        return False
    post_to_webhook(webhook_text(message, subject), url)
    return True
