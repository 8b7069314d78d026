"""Raising the alert an event calls for: once per message and kind, on both backends.

The bus delivers at least once and an archive replay delivers again, so the alert is
claimed in the idempotency store under a key made from the message (a replayed copy has a
new envelope id, the same message) and only the first claim reaches the sink. On AWS this
runs in the core app's alert functions, one per `ALERT_PATTERNS` rule on the bus, and the
sink is the SNS topic; locally the bus's built-in alert target calls it and the sink is
`alerts.jsonl`. Either way the text is built here from typed fields (`chalicelib/alerts.py`),
never by pasting the event into a template.
"""

from __future__ import annotations

from typing import Any

from chalicelib import alerts, backend


def alert_key(envelope: dict[str, Any]) -> str:
    """The alert's natural key: its event's kind and the message it is about."""
    detail = envelope.get("detail") or {}
    return f"{envelope['detail-type']}:{detail.get('Kind')}:{detail.get('MessageId')}"


def raise_alert_for_event(envelope: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The alert for one event on the bus, raised once whatever the redelivery; returns it.

    `context` is the Lambda context on AWS (a crashed invocation's claim then expires with
    its timeout, so the retry can take over)."""
    alert = alerts.alert_from_envelope(envelope)
    key = alert_key(envelope)

    def raise_it() -> str:
        # The sink is told the key too: the local one dedupes a kill between its append
        # and this record's completion; SNS cannot (docs/ARCHITECTURE.md, alerts).
        backend.alert_sink().raise_alert(alert, key=key)
        return "raised"

    backend.idempotency().once("alert", key, raise_it, context=context)
    return alert
