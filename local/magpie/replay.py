"""`magpie replay`: publish archived events again, locally or from the EventBridge archive.

Locally the bus's event log is the archive. A replay copies each original envelope in the
window back onto the bus, marked as EventBridge marks a replayed event (a `replay-name`
field) and logged with that replay name, so `LocalBusStore.archived` never returns it as
an original and a later replay cannot replay a replay. The dispatcher routes the copies
with the same patterns as any event; the targets are idempotent per message, so a replay
repeats no analysis and no reply.

On AWS, `start_aws_replay` starts an EventBridge replay from the archive onto its bus.
EventBridge filters a replay by rule, not by detail-type: `--detail-type X` becomes the
rules on the bus whose pattern names X in `detail-type`, so catch-all rules (the lake, the
logs) do not get a second copy.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.errors import InputError

# Replay copies get ids derived from (replay name, original id): the local log keeps ids
# unique, and the same replay name can never be applied twice.
_REPLAY_NAMESPACE = uuid.UUID("7f0b9a52-5d0e-4a51-9d3c-6a7e0c1f5b21")
TERMINAL_STATES = ("COMPLETED", "CANCELLED", "FAILED")


class ReplayError(InputError):
    """A replay that cannot start: nothing to filter on, a name already used, no archive."""


@dataclass(frozen=True)
class LocalReplay:
    name: str
    events: int
    first_seq: int  # the log's last sequence number before the copies were appended


def replay_name(now: datetime | None = None) -> str:
    """A fresh name, valid for EventBridge too ([.-_A-Za-z0-9]{1,64})."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"magpie-replay-{moment}-{uuid.uuid4().hex[:6]}"


def replay_copy(envelope: dict[str, Any], name: str) -> dict[str, Any]:
    copy = dict(envelope)
    copy["id"] = str(uuid.uuid5(_REPLAY_NAMESPACE, f"{name}/{envelope['id']}"))
    copy["replay-name"] = name
    return copy


def replay_local(
    store: Any,
    start: str,
    end: str,
    detail_types: Sequence[str] | None = None,
    name: str | None = None,
) -> LocalReplay:
    """Append a copy of every original event with start <= time < end (optionally of the
    given detail-types) to the local bus, atomically."""
    name = name or replay_name()
    originals = store.archived(start, end, list(detail_types) if detail_types else None)
    before = store.last_seq()
    if originals:
        try:
            store.append([replay_copy(e, name) for e in originals], replay_name=name)
        except sqlite3.IntegrityError as exc:
            raise ReplayError(f"a replay named {name!r} has already run") from exc
    return LocalReplay(name, len(originals), before)


# --- EventBridge ------------------------------------------------------------------------


def _arn_resource(arn: str, kind: str) -> str:
    """arn:aws:events:REGION:ACCOUNT:<kind>/<name> -> name."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or not parts[5].startswith(kind + "/"):
        raise ReplayError(f"not an EventBridge {kind} ARN: {arn!r}")
    return parts[5][len(kind) + 1 :]


def rules_for_detail_types(client: Any, bus_name: str, detail_types: Sequence[str]) -> list[str]:
    """ARNs of the bus's rules whose pattern lists one of `detail_types` in `detail-type`."""
    wanted = set(detail_types)
    arns = []
    for page in client.get_paginator("list_rules").paginate(EventBusName=bus_name):
        for rule in page.get("Rules", []):
            if not rule.get("EventPattern"):
                continue  # a scheduled rule
            named = json.loads(rule["EventPattern"]).get("detail-type", [])
            if any(isinstance(value, str) and value in wanted for value in named):
                arns.append(rule["Arn"])
    return arns


def start_aws_replay(
    client: Any,
    *,
    archive_arn: str,
    start: str,
    end: str,
    name: str | None = None,
    detail_types: Sequence[str] = (),
    rule_arns: Sequence[str] = (),
    bus_arn: str | None = None,
) -> dict[str, Any]:
    """Start an EventBridge replay of the archive's events with start <= time < end."""
    archive = client.describe_archive(ArchiveName=_arn_resource(archive_arn, "archive"))
    bus_arn = bus_arn or archive["EventSourceArn"]
    filters = list(rule_arns)
    if detail_types:
        matched = rules_for_detail_types(client, _arn_resource(bus_arn, "event-bus"), detail_types)
        if not matched:
            raise ReplayError(
                f"no rule on {bus_arn} names detail-type {', '.join(detail_types)}: "
                "nothing would receive the replay (pass --rule ARN to choose rules)"
            )
        filters += matched
    destination: dict[str, Any] = {"Arn": bus_arn}
    if filters:
        destination["FilterArns"] = sorted(set(filters))
    name = name or replay_name()
    response = client.start_replay(
        ReplayName=name,
        Description="magpie replay" + (f" of {', '.join(detail_types)}" if detail_types else ""),
        EventSourceArn=archive_arn,
        EventStartTime=_instant(start),
        EventEndTime=_instant(end),
        Destination=destination,
    )
    return {"ReplayName": name, "Destination": destination, **response}


def wait_for_replay(
    client: Any,
    name: str,
    *,
    timeout: float,
    poll: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll describe_replay until the replay ends (or `timeout` seconds pass)."""
    waited = 0.0
    while True:
        state = client.describe_replay(ReplayName=name)
        if state["State"] in TERMINAL_STATES or waited >= timeout:
            return state
        sleep(poll)
        waited += poll


def _instant(iso: str) -> datetime:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
