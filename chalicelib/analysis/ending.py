"""The one ending of a message's analysis: MESSAGE_ANALYSED or MESSAGE_ANALYSIS_FAILED.

An analysis can run more than once for one message: a redelivered MESSAGE_RECEIVED, a
retry after a crash or a lost acknowledgement, a replay of the archive, and on AWS the
report of an Express execution's ending from its log (chalicelib/analysis/endings.py).
Two runs may end differently (the first answered, the second failed on a fault), and a
message with two endings is answered *and* alerted as failed. So every run that reaches
an ending only proposes it, and `settle` makes the first proposal the message's ending,
on both backends and for both kinds of ending, with two idempotency records keyed on the
message (`<Kind>:<MessageId>`):

1. **claimed** (`analysis-ending`, kept a week like the other analysis records): the first
   proposal, whole (its events, as they will be published). A later run gets the claimed
   ending back instead of its own.
2. **published** (`analysis-ended`, kept as long as the reply's record, REPLY_MEMORY_DAYS,
   so that no replay of any archive we keep can end the message again): the claimed ending
   is published inside it, once, and it keeps only which ending that was.

A crash between claiming and publishing: the next run publishes the claimed ending. A
crash between publishing and recording it: the next run publishes the same events again,
which every consumer absorbs (each is idempotent on the message). A proposal that differs
from the message's ending is dropped, and said so in the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib import events

logger = logging.getLogger(__name__)

CLAIMED_NAMESPACE = "analysis-ending"
PUBLISHED_NAMESPACE = "analysis-ended"
ANALYSIS_FAILED = "analysis_failed"  # REPLY_SKIPPED.Reason of a message whose analysis failed


@dataclass(frozen=True)
class Settled:
    """What became of a proposed ending."""

    detail_type: str  # the message's one ending
    detail: dict[str, Any]  # its detail; only {MessageId, Kind} once its claim has expired
    proposed: bool  # the ending is the one this call proposed


def settle(proposal: Sequence[events.OutgoingEvent]) -> Settled:
    """Make `proposal` (the ending event first, then what must go with it) the message's
    ending unless it already has one, and see that the ending is published."""
    from chalicelib import backend

    ending = proposal[0]
    key = f"{ending.detail['Kind']}:{ending.detail['MessageId']}"
    proposed = [_stored(event) for event in proposal]
    claimed = backend.idempotency().once(CLAIMED_NAMESPACE, key, lambda: proposed)
    published = backend.ending_idempotency().once(
        PUBLISHED_NAMESPACE, key, lambda: _publish(claimed)
    )
    settled = _settled(published, claimed, proposed)
    if not settled.proposed:
        logger.info(
            "analysis of %s: ended already as %s; this run's %s is dropped",
            key,
            settled.detail_type,
            ending.detail_type,
        )
    return settled


def _stored(event: events.OutgoingEvent) -> dict[str, Any]:
    """An event as the claim keeps it (JSON), and as it is published again."""
    return {
        "Source": event.source,
        "DetailType": event.detail_type,
        "Detail": event.detail,
        "Time": event.time,
    }


def _publish(claimed: list[dict[str, Any]]) -> dict[str, Any]:
    from chalicelib.publishing import publish

    publish(
        [
            events.OutgoingEvent(e["Source"], e["DetailType"], e["Detail"], e["Time"])
            for e in claimed
        ]
    )
    detail = claimed[0]["Detail"]
    return {"DetailType": claimed[0]["DetailType"], "Digest": _digest(claimed), **_ids(detail)}


def _settled(
    published: dict[str, Any], claimed: list[dict[str, Any]], proposed: list[dict[str, Any]]
) -> Settled:
    if published.get("Digest") == _digest(claimed):
        detail: dict[str, Any] = claimed[0]["Detail"]
    else:  # the claim that was published has expired; this claim was never published
        detail = _ids(claimed[0]["Detail"])
    return Settled(published["DetailType"], detail, published.get("Digest") == _digest(proposed))


def _ids(detail: dict[str, Any]) -> dict[str, Any]:
    return {"MessageId": detail["MessageId"], "Kind": detail["Kind"]}


def _digest(stored: list[dict[str, Any]]) -> str:
    """Which events an ending is, in a few bytes (the published record keeps only this)."""
    import hashlib

    text = json.dumps(stored, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- the two endings --------------------------------------------------------------------------


def analysed(message: events.MessageAnalysed) -> list[events.OutgoingEvent]:
    """The proposal of a run that analysed the message."""
    return [message.to_event()]


def analysis_failed(received: events.MessageReceived, reason: str) -> list[events.OutgoingEvent]:
    """The proposal of a run that could not: MESSAGE_ANALYSIS_FAILED, and the message's
    outcome with it (REPLY_SKIPPED), so the ledger never sees a message that failed without
    one."""
    failed = events.MessageAnalysisFailed(
        Text=received.Text,
        Author=received.Author,
        Twitter=received.Twitter,
        MessageId=received.MessageId,
        Kind=received.Kind,
        Reason=reason,
        ReceivedAt=received.ReceivedAt,
    )
    skipped = events.ReplySkipped(
        failed.MessageId, failed.Kind, ANALYSIS_FAILED, failed.Twitter.UserId
    )
    return [
        failed.to_event(),
        events.OutgoingEvent(events.ANALYSIS, skipped.DETAIL_TYPE, skipped.to_detail()),
    ]
