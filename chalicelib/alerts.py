"""Alerts: negative messages, failed analyses and failed replies, for a human to look at.

On AWS a rule per pattern invokes the core app's alert function, which publishes the alert
once per message to the SNS topic (chalicelib/alerting.py), and the core app forwards each
SNS message to an optional Slack-compatible webhook. Locally the same alert is printed
and appended to `MAGPIE_HOME/alerts.jsonl`. This module says what an alert is and how it
reads; the sinks that raise one are adapters (chalicelib/alert_sinks.py). An alert carries
the author, the text, the score and a link, never credentials or whole payloads.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import quote

from chalicelib.display import escape_controls

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

# The patterns of the alert rules: the core app's alert functions subscribe to them on AWS
# (app.py), the local bus's alert targets locally.
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


def slack_escape(text: str) -> str:
    """Slack's three control characters as entities: `<!channel>` cannot ping anyone and
    `<https://evil|label>` cannot hide a link behind a label."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_text(message: str, subject: str | None = None) -> str:
    """What the webhook shows for one SNS message on the alert topic, whoever wrote it:
    a CloudWatch alarm's JSON, an alert of ours (it has a `Kind`), an event EventBridge
    delivered whole, or any other text someone published to the topic. Every part that
    came from outside is escaped."""
    try:
        parsed: Any = json.loads(message)
    except ValueError:
        parsed = message
    if isinstance(parsed, dict) and "AlarmName" in parsed and "NewStateValue" in parsed:
        return _alarm_text(parsed)
    if isinstance(parsed, dict) and parsed.get("detail-type") in ALERT_BUILDERS:
        parsed = alert_from_envelope(parsed)
    if isinstance(parsed, dict) and parsed.get("Kind"):
        return alert_text(parsed)
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


def alert_text(alert: dict[str, Any]) -> str:
    """The alert for the Slack-compatible webhook: `plain_alert_text` with Slack's three
    control characters escaped."""
    return slack_escape(plain_alert_text(alert))


def plain_alert_text(alert: dict[str, Any]) -> str:
    """One line per field (the alert e-mail's body). Every value is kept on its line
    (control characters escaped), and the values a stranger writes (the text; an author
    that is not a plain handle) are quoted as inline code, where Slack renders no link and
    no formatting: a message's text cannot add a line, a field or a link of its own."""
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
    return "\n".join(lines)[:MAX_WEBHOOK_TEXT]


def _field(value: Any) -> str:
    return escape_controls(str(value))


def _name(value: Any) -> str:
    text = str(value)
    return text if _PLAIN_NAME.fullmatch(text) else _quoted(text)


def _quoted(text: str) -> str:
    """Inline code on one line: a backtick in the text would end it, so it becomes a
    modifier letter grave accent (U+02CB), which looks the same."""
    return "`" + escape_controls(text).replace("`", "\u02cb") + "`"
