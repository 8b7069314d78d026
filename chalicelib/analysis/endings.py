"""Every analysis execution reports how it ended, even when the workflow could not.

The workflow publishes MESSAGE_ANALYSED, or catches a failing step and publishes
MESSAGE_ANALYSIS_FAILED itself. Some endings never reach either step: the execution timed
out, was stopped, or failed where no Catch applies (a state's output over the 256 KB limit,
States.DataLimitExceeded; States.Runtime). Step Functions sends no EventBridge status change
for an Express execution, but it logs the ending to the state machine's log group; a
subscription filter on that group hands the ending to `analysis_stopped`.

Those log events name the execution, not its input. So `remember` (the workflow's first
step) records which message the execution analyses, and `analysis_stopped` proposes
MESSAGE_ANALYSIS_FAILED as that message's ending (chalicelib/analysis/ending.py): a message
that already ended, analysed or failed, keeps its ending, and nothing is published twice.

The subscription's event is CloudWatch Logs' documented shape: {"awslogs": {"data": base64
of the gzipped JSON {"messageType", "logGroup", "logStream", "logEvents": [{"id",
"timestamp", "message"}]}}}; each message is one Step Functions log event, JSON with "id",
"type", "details" ({"error", "cause"} for an ending), "previous_event_id",
"event_timestamp" and "execution_arn".
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib import events
from chalicelib.analysis import ending
from chalicelib.analysis.ending import Settled
from chalicelib.analysis.failures import failure_text
from chalicelib.errors import InputError

logger = logging.getLogger(__name__)

# The execution history events that end an execution without success.
ENDINGS = {
    "ExecutionFailed": "failed",
    "ExecutionTimedOut": "timed out",
    "ExecutionAborted": "was aborted",
}
# The error of the workflow's own Fail state, entered only after PublishAnalysisFailed
# published: such an ending needs no second look (infra/magpie_stack/analysis.py).
REPORTED_BY_WORKFLOW = "AnalysisFailed"
# How long an execution's message is remembered: the execution limit is minutes; a day
# covers CloudWatch Logs' delivery and Lambda's asynchronous retries (up to 6 hours).
EXECUTION_MEMORY_SECONDS = 24 * 3600
# Why an ending was not reported (the handler's answer, and its log line).
WORKFLOW_REPORTED = "the workflow published MESSAGE_ANALYSIS_FAILED itself"
ALREADY_ENDED = "its message had ended already, as"
UNKNOWN = (
    "no record of the message it analysed (expired, or the execution ended before its "
    "first step recorded it)"
)


class LogDeliveryUnreadable(InputError):
    """The subscription's event is not CloudWatch Logs' documented shape."""


@dataclass(frozen=True)
class ExecutionEnded:
    """One Step Functions log event for an execution's ending."""

    execution: str
    type: str
    error: str | None = None
    cause: str | None = None

    @classmethod
    def from_log_message(cls, message: str) -> ExecutionEnded | None:
        """The ending this log event records, or None for any other event."""
        try:
            event = json.loads(message)
        except ValueError as exc:
            raise LogDeliveryUnreadable(f"a log event is not JSON: {exc}") from exc
        if not isinstance(event, dict) or event.get("type") not in ENDINGS:
            return None
        if not event.get("execution_arn"):
            raise LogDeliveryUnreadable(f"a {event['type']} log event names no execution_arn")
        details = event.get("details") or {}
        return cls(
            execution=str(event["execution_arn"]),
            type=event["type"],
            error=details.get("error") or None,
            cause=details.get("cause") or None,
        )

    def failure(self) -> dict[str, str]:
        """{Error, Cause} as the workflow's Catch hands them to publish_analysis_failed."""
        return {
            "Error": self.error or self.type,
            "Cause": self.cause or f"the analysis execution {ENDINGS[self.type]}",
        }


def remember(
    execution: str, message: dict[str, Any], clock: Callable[[], float] = time.time
) -> None:
    """Record which message the execution analyses, for as long as its ending may arrive."""
    from chalicelib import backend

    expires_at = int(clock()) + EXECUTION_MEMORY_SECONDS
    backend.analysis_executions().remember(execution, message, expires_at)


def log_messages(event: dict[str, Any]) -> list[str]:
    """The log events' messages in a CloudWatch Logs subscription event; none for the
    CONTROL_MESSAGE CloudWatch Logs sends to check that the destination is reachable."""
    try:
        data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
        if data["messageType"] != "DATA_MESSAGE":
            return []
        return [str(log_event["message"]) for log_event in data["logEvents"]]
    except (KeyError, TypeError, ValueError, binascii.Error, OSError, zlib.error) as exc:
        raise LogDeliveryUnreadable(
            f"not a CloudWatch Logs subscription event: {type(exc).__name__}: {exc}"
        ) from exc


def analysis_stopped(event: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Report each analysis execution this log delivery says ended without success.
    Returns what became of each ending: reported (MESSAGE_ANALYSIS_FAILED published now or
    earlier, once) or skipped with the reason."""
    outcome: dict[str, list[dict[str, str]]] = {"Reported": [], "Skipped": []}
    for message in log_messages(event):
        ended = ExecutionEnded.from_log_message(message)
        if ended is None:
            continue
        if ended.error == REPORTED_BY_WORKFLOW:
            logger.info("analysis execution %s: reported by the workflow", ended.execution)
            outcome["Skipped"].append({"Execution": ended.execution, "Reason": WORKFLOW_REPORTED})
            continue
        settled = _report(ended)
        if settled is None:
            logger.warning(
                "analysis execution %s %s: skipped, %s", ended.execution, ended.type, UNKNOWN
            )
            outcome["Skipped"].append({"Execution": ended.execution, "Reason": UNKNOWN})
        elif (
            not settled.proposed and settled.detail_type != events.MessageAnalysisFailed.DETAIL_TYPE
        ):
            reason = f"{ALREADY_ENDED} {settled.detail_type}"
            logger.info(
                "analysis execution %s %s: skipped, %s", ended.execution, ended.type, reason
            )
            outcome["Skipped"].append({"Execution": ended.execution, "Reason": reason})
        else:
            message_id = str(settled.detail["MessageId"])
            logger.info("analysis execution %s %s: reported", ended.execution, ended.type)
            outcome["Reported"].append({"Execution": ended.execution, "MessageId": message_id})
    return outcome


def _report(ended: ExecutionEnded) -> Settled | None:
    """MESSAGE_ANALYSIS_FAILED proposed as the ending of the execution's message (which may
    have ended already); None when the message is not known."""
    from chalicelib import backend

    message = backend.analysis_executions().recall(ended.execution)
    if message is None:
        return None
    received = events.MessageReceived.from_detail(message)
    return ending.settle(ending.analysis_failed(received, failure_text(ended.failure())))
