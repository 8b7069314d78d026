"""Built-in local targets for what is infrastructure on AWS: Step Functions and SNS."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from magpie.dispatcher import Target, pattern_target

logger = logging.getLogger(__name__)

ANALYSIS_PATTERN = {"source": ["magpie.ingress"], "detail-type": ["MESSAGE_RECEIVED"]}


def run_analysis(envelope: dict[str, Any], context: Any) -> None:
    """The Step Functions execution, locally: once per message, whatever the redelivery."""
    from chalicelib import backend
    from chalicelib.analysis.orchestrator import analyse

    message = envelope["detail"]
    key = f"{message.get('Kind')}:{message.get('MessageId')}"
    backend.idempotency().once("analysis", key, lambda: analyse(message) and "published")


def raise_alert(envelope: dict[str, Any], context: Any) -> None:
    """The SNS topic and the core app's forwarder, locally."""
    from chalicelib import alert_sinks, alerts, backend
    from chalicelib.config import settings

    alert = alerts.alert_from_envelope(envelope)
    # Keyed on the message, not the envelope: a replayed copy has a new envelope id.
    detail = envelope.get("detail") or {}
    key = f"{envelope['detail-type']}:{detail.get('Kind')}:{detail.get('MessageId')}"

    def write() -> str:
        # The sink dedupes on the key too: a kill after the line is appended and before
        # `once` records it makes the takeover call this again.
        backend.alert_sink().raise_alert(alert, key=key)
        return "raised"

    def forward() -> str:
        url = settings().alert_webhook_url
        if url:
            alert_sinks.forward_to_webhook(alert, url)
        return "forwarded"

    # Two steps, as on AWS (the SNS topic, then its webhook subscriber): a failing webhook makes
    # the bus retry this delivery, and only the forward runs again, never the write.
    backend.idempotency().once("alert", key, write)
    backend.idempotency().once("alert-forward", key, forward)


def local_targets(home: Path) -> list[Target]:
    from chalicelib.alerts import ALERT_PATTERNS

    targets = [pattern_target("analysis", ANALYSIS_PATTERN, run_analysis)]
    targets += [
        pattern_target(f"alerts.{name}", pattern, raise_alert)
        for name, pattern in ALERT_PATTERNS.items()
    ]
    return targets
