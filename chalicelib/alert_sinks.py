"""The AlertSink adapters: alerts.jsonl (and the console) locally, the SNS topic on AWS; and
the optional Slack-compatible webhook every alert is forwarded to."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from chalicelib.alerts import alert_text, plain_alert_text, summary, webhook_text
from chalicelib.errors import UnavailableError
from chalicelib.sqlite_file import SqliteFile


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
    """The alert topic: its e-mail subscribers get the alert as text, one line per field
    (`plain_alert_text`), and every other subscriber (the core app's webhook forwarder, a
    queue) the alert as JSON."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def raise_alert(self, alert: dict[str, Any], key: str | None = None) -> None:
        # A standard topic has no de-duplication: the caller's idempotency record is what
        # keeps a redelivered event from publishing again (chalicelib/alerting.py).
        message = {
            "default": json.dumps(alert, ensure_ascii=False),
            "email": plain_alert_text(alert),
        }
        self._client.publish(
            TopicArn=self._topic_arn,
            Subject=f"Magpie alert: {alert.get('Kind')}"[:100],  # Kind is one of ours
            Message=json.dumps(message, ensure_ascii=False),
            MessageStructure="json",
        )


class AlertForwardError(UnavailableError, RuntimeError):
    """The alert webhook refused or could not be reached (its URL is never in the message)."""


def forward_to_webhook(alert: dict[str, Any], url: str, timeout: float = 5.0) -> None:
    """POST one alert raised in code as a Slack-compatible message."""
    post_to_webhook(alert_text(alert), url, timeout)


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
