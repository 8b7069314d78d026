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
    from chalicelib import alert_sinks, backend
    from chalicelib.alerting import alert_key, raise_alert_for_event
    from chalicelib.config import settings

    alert = raise_alert_for_event(envelope)

    def forward() -> str:
        url = settings().alert_webhook_url
        if url:
            alert_sinks.forward_to_webhook(alert, url)
        return "forwarded"

    # Two steps, as on AWS (the alert function publishing to the topic, then the topic's
    # webhook subscriber): a failing webhook makes the bus retry this delivery, and only the
    # forward runs again, never the alert.
    backend.idempotency().once("alert-forward", alert_key(envelope), forward)


def local_targets(home: Path) -> list[Target]:
    from chalicelib.alerts import ALERT_PATTERNS

    targets = [pattern_target("analysis", ANALYSIS_PATTERN, run_analysis)]
    targets += [
        pattern_target(f"alerts.{name}", pattern, raise_alert)
        for name, pattern in ALERT_PATTERNS.items()
    ]
    return targets
