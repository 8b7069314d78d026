"""`magpie ledger`: check that every message the bot received ends exactly once.

The invariant. Every MESSAGE_RECEIVED (keyed by Kind and MessageId, so redelivered copies
count once) ends in exactly one terminal outcome:

  sent      TWEET_SENT (one reply, whatever how many copies of the event were delivered)
  skipped   REPLY_SKIPPED with a non-empty reason
  failed    TWEET_FAILED with a reason (X refused the reply for good: 400, 403, 404...)
  parked    no outcome yet, but a delivery of one of its events is in the dead-letter store,
            from where `magpie replay --dead-letters` finishes it

and never two replies to one message. What is reported as a violation:

  lost                        received, no outcome, nothing parked, the bus idle
  analysis_failed_unanswered  only MESSAGE_ANALYSIS_FAILED: nobody answered or skipped it
  acknowledged_not_received   the webhook acknowledged it (per `expected`), but no
                              MESSAGE_RECEIVED was ever published
  duplicate_reply             two or more distinct replies (TWEET_SENT ids, or replies found
                              in the dry-run outbox) for one message
  multiple_outcomes           e.g. both sent and skipped
  multiple_analysis_endings   more than one analysis ending: MESSAGE_ANALYSED and
                              MESSAGE_ANALYSIS_FAILED, or two MESSAGE_ANALYSED that differ
                              (copies of one ending, as a redelivery or replay makes, are one)
  skipped_without_reason      REPLY_SKIPPED with an empty reason
  reply_without_message       a reply (TWEET_SENT or outbox file) to no received message
  unattributed_reply          an outbox reply that no TWEET_SENT records and that cannot be
                              tied to one message

Evidence: the data lake (`MAGPIE_HOME/lake`), the local bus's dead-letter store and its
pending deliveries (`bus.sqlite3`), and the dry-run outbox (`MAGPIE_HOME/outbox`), which
is the only place a reply that went out unrecorded would show. While the bus still has
pending deliveries, unfinished messages are `in_flight`, not lost.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magpie.lake import LocalLake, TornLines

TERMINAL_TYPES = ("TWEET_SENT", "REPLY_SKIPPED", "TWEET_FAILED")
ANALYSIS_ENDINGS = ("MESSAGE_ANALYSED", "MESSAGE_ANALYSIS_FAILED")
# A SEND_TWEET egress refused for its source is not an outcome of any message.
REFUSED_COMMAND = "untrusted_source"

MessageKey = tuple[str, str]  # (Kind, MessageId)


@dataclass
class MessageRecord:
    """Everything the evidence says about one message."""

    kind: str
    message_id: str
    received: int = 0
    tweet_id: str | None = None
    user_id: str | None = None
    sent_ids: set[str] = field(default_factory=set)
    skipped: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    analysis_failed: bool = False
    endings: dict[str, str] = field(default_factory=dict)  # digest of each ending -> its type
    parked: set[str] = field(default_factory=set)
    outbox: set[str] = field(default_factory=set)

    @property
    def replies(self) -> set[str]:
        return self.sent_ids | self.outbox

    @property
    def outcomes(self) -> set[tuple[str, str]]:
        return (
            {("sent", s) for s in self.sent_ids}
            | {("skipped", r) for r in self.skipped}
            | {("failed", r) for r in self.failed}
        )


@dataclass(frozen=True)
class Violation:
    kind: str
    message: str  # "<Kind>:<MessageId>" or the outbox file
    detail: str


@dataclass
class LedgerReport:
    messages: int = 0
    states: Counter = field(default_factory=Counter)
    skip_reasons: Counter = field(default_factory=Counter)
    fail_reasons: Counter = field(default_factory=Counter)
    analysis_endings: Counter = field(default_factory=Counter)  # messages per ending's type
    violations: list[Violation] = field(default_factory=list)
    duplicate_events: int = 0  # extra copies of MESSAGE_RECEIVED/outcomes, absorbed
    dead_letters: int = 0
    outstanding: int = 0  # bus deliveries not finished when checked
    outbox_files: int = 0
    refused_commands: int = 0
    torn_lines: str = ""  # the lake lines that could not be read, described; "" if none

    @property
    def holds(self) -> bool:
        return not self.violations

    @property
    def settled(self) -> bool:
        return self.states["in_flight"] == 0 and self.outstanding == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "holds": self.holds,
            "settled": self.settled,
            "messages": self.messages,
            "states": dict(self.states),
            "skip_reasons": dict(self.skip_reasons),
            "fail_reasons": dict(self.fail_reasons),
            "analysis_endings": dict(self.analysis_endings),
            "violations": [v.__dict__ for v in self.violations],
            "violation_counts": dict(Counter(v.kind for v in self.violations)),
            "duplicate_events": self.duplicate_events,
            "dead_letters": self.dead_letters,
            "outstanding": self.outstanding,
            "outbox_files": self.outbox_files,
            "refused_commands": self.refused_commands,
            "torn_lines": self.torn_lines,
        }


# --- gathering the evidence ---------------------------------------------------------------


@dataclass
class Evidence:
    envelopes: list[dict[str, Any]]  # the lake's records
    dead: list[tuple[str, dict[str, Any]]]  # (target, envelope) per dead letter
    outstanding: int
    outbox: list[dict[str, Any]]
    torn: TornLines = field(default_factory=TornLines)


def gather(home: Path) -> Evidence:
    """Read the lake, the bus and the outbox under `home` (read-only)."""
    torn = TornLines()
    envelopes = LocalLake(home / "lake").records(torn)
    dead, outstanding = _bus_state(home / "bus.sqlite3")
    return Evidence(envelopes, dead, outstanding, read_outbox(home / "outbox"), torn)


def _bus_state(path: Path) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    if not path.exists():
        return [], 0
    from chalicelib.bus.local import LocalBusStore

    store = LocalBusStore(path)
    letters = store.dead_letters()
    if not letters:
        return [], store.outstanding()
    first = min(letter.event_seq for letter in letters)
    by_seq = dict(store.events_since(first - 1))
    dead = [(letter.target, by_seq[letter.event_seq]) for letter in letters]
    return dead, store.outstanding()


def read_outbox(root: Path) -> list[dict[str, Any]]:
    """Every reply file in the dry-run outbox (temporary files are ignored)."""
    if not root.is_dir():
        return []
    records = []
    for path in sorted(root.glob("*.json")):
        record = json.loads(path.read_text())
        record["_file"] = path.name
        records.append(record)
    return records


def wait_until_idle(
    home: Path,
    timeout: float,
    poll: float = 0.25,
    *,
    stall: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Wait for the bus under `home` to have nothing pending (a runtime elsewhere delivers).

    With `stall`, give up as soon as the bus has not moved for that long (no delivery
    claimed, finished, failed or postponed, no event published), whatever is left of
    `timeout`: a slow machine is then waited for, and a stuck one is not."""
    path = home / "bus.sqlite3"
    if not path.exists():
        return True
    from chalicelib.bus.local import LocalBusStore

    store = LocalBusStore(path)
    deadline = clock() + timeout
    last_activity, moved_at = store.activity(), clock()
    while clock() < deadline:
        if store.outstanding() == 0:
            return True
        if stall is not None:
            activity = store.activity()
            if activity != last_activity:
                last_activity, moved_at = activity, clock()
            elif clock() - moved_at >= stall:
                return False
        sleep(poll)
    return store.outstanding() == 0


# --- the check ----------------------------------------------------------------------------


def check(home: Path, expected: Iterable[MessageKey] | None = None) -> LedgerReport:
    """Check the invariant over everything under `home`."""
    return check_evidence(gather(home), expected)


def check_evidence(
    evidence: Evidence, expected: Iterable[MessageKey] | None = None
) -> LedgerReport:
    report = LedgerReport(
        dead_letters=len(evidence.dead),
        outstanding=evidence.outstanding,
        outbox_files=len(evidence.outbox),
        torn_lines=evidence.torn.describe() if evidence.torn else "",
    )
    messages: dict[MessageKey, MessageRecord] = {}
    orphans: dict[MessageKey, MessageRecord] = {}
    copies: Counter = Counter()
    for envelope in evidence.envelopes:
        _apply(envelope, messages, orphans, copies, report)
    for target, envelope in evidence.dead:
        _apply_dead(target, envelope, messages, orphans)
    report.duplicate_events = sum(n - 1 for n in copies.values() if n > 1)
    _attribute_outbox(evidence.outbox, messages, report)
    for key in expected or ():
        if key not in messages:
            report.violations.append(
                Violation("acknowledged_not_received", _name(key), "no MESSAGE_RECEIVED")
            )
    for key, record in orphans.items():
        if record.sent_ids:
            report.violations.append(
                Violation("reply_without_message", _name(key), ", ".join(sorted(record.sent_ids)))
            )
    report.messages = len(messages)
    busy = evidence.outstanding > 0
    for key, record in sorted(messages.items()):
        state = _judge(key, record, busy, report)
        report.states[state] += 1
    return report


def _apply(
    envelope: dict[str, Any],
    messages: dict[MessageKey, MessageRecord],
    orphans: dict[MessageKey, MessageRecord],
    copies: Counter,
    report: LedgerReport,
) -> None:
    detail_type = envelope.get("detail-type")
    detail = envelope.get("detail") or {}
    key = _key(detail)
    if key is None:
        return
    if detail_type == "MESSAGE_RECEIVED":
        record = _record(key, messages, orphans, create=True)
        record.received += 1
        twitter = detail.get("Twitter") or {}
        record.tweet_id = twitter.get("TweetId")
        record.user_id = twitter.get("UserId")
        copies[(detail_type, key)] += 1
    elif detail_type in ANALYSIS_ENDINGS:
        record = _record(key, messages, orphans)
        record.analysis_failed |= detail_type == "MESSAGE_ANALYSIS_FAILED"
        record.endings[_digest(detail)] = str(detail_type)
    elif detail_type in TERMINAL_TYPES:
        if detail_type == "REPLY_SKIPPED" and detail.get("Reason") == REFUSED_COMMAND:
            report.refused_commands += 1
            return
        record = _record(key, messages, orphans)
        if detail_type == "TWEET_SENT":
            value = str(detail.get("SentId") or "")
            record.sent_ids.add(value)
        elif detail_type == "REPLY_SKIPPED":
            value = str(detail.get("Reason") or "")
            record.skipped.add(value)
        else:
            value = str(detail.get("Reason") or "")
            record.failed.add(value)
        copies[(detail_type, key, value)] += 1


def _apply_dead(
    target: str,
    envelope: dict[str, Any],
    messages: dict[MessageKey, MessageRecord],
    orphans: dict[MessageKey, MessageRecord],
) -> None:
    key = _key(envelope.get("detail") or {})
    if key is None:
        return  # a raw X event parked on its way to the lake: no reply depends on it
    # A parked MESSAGE_RECEIVED may never have reached the lake: it still counts as received.
    create = envelope.get("detail-type") == "MESSAGE_RECEIVED"
    record = _record(key, messages, orphans, create=create)
    if create and record.received == 0:
        record.received = 1
        twitter = (envelope.get("detail") or {}).get("Twitter") or {}
        record.tweet_id, record.user_id = twitter.get("TweetId"), twitter.get("UserId")
    record.parked.add(f"{target} on {envelope.get('detail-type')}")


def _digest(detail: dict[str, Any]) -> str:
    """The same event's copies have the same digest; two runs' endings do not."""
    text = json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _key(detail: dict[str, Any]) -> MessageKey | None:
    kind, message_id = detail.get("Kind"), detail.get("MessageId")
    if not kind or not message_id:
        return None
    return str(kind), str(message_id)


def _record(
    key: MessageKey,
    messages: dict[MessageKey, MessageRecord],
    orphans: dict[MessageKey, MessageRecord],
    *,
    create: bool = False,
) -> MessageRecord:
    """The message's record; outcomes seen before (or without) their MESSAGE_RECEIVED wait
    in `orphans` and are merged when it turns up."""
    if key in messages:
        return messages[key]
    if create:
        record = orphans.pop(key, None) or MessageRecord(*key)
        messages[key] = record
        return record
    return orphans.setdefault(key, MessageRecord(*key))


def _attribute_outbox(
    outbox: list[dict[str, Any]], messages: dict[MessageKey, MessageRecord], report: LedgerReport
) -> None:
    """Tie each outbox reply to its message: by its sent id, else by what it replied to."""
    by_sent = {sent: r for r in messages.values() for sent in r.sent_ids}
    by_tweet: dict[str | None, MessageRecord] = {
        r.tweet_id: r for r in messages.values() if r.kind == "MENTION" and r.tweet_id
    }
    dm_by_user: dict[str, list[MessageRecord]] = {}
    record: MessageRecord | None  # each message here, then the one a reply belongs to
    for record in messages.values():
        if record.kind == "DIRECT_MESSAGE" and record.user_id:
            dm_by_user.setdefault(record.user_id, []).append(record)
    for reply in outbox:
        sent_id = str(reply.get("sent_id", ""))
        record = by_sent.get(sent_id)
        if record is None and reply.get("kind") == "MENTION":
            record = by_tweet.get(reply.get("reply_to_tweet_id"))
        if record is None and reply.get("kind") == "DIRECT_MESSAGE":
            candidates = dm_by_user.get(str(reply.get("reply_to_user_id")), [])
            record = candidates[0] if len(candidates) == 1 else None
        if record is None:
            kind = (
                "reply_without_message"
                if reply.get("kind") == "MENTION"
                else ("unattributed_reply")
            )
            report.violations.append(Violation(kind, reply.get("_file", "?"), sent_id))
            continue
        record.outbox.add(sent_id)


def _judge(key: MessageKey, record: MessageRecord, busy: bool, report: LedgerReport) -> str:
    """The message's state; violations are appended to the report."""
    name = _name(key)
    if len(record.replies) > 1:
        report.violations.append(
            Violation("duplicate_reply", name, ", ".join(sorted(record.replies)))
        )
    if "" in record.skipped:
        report.violations.append(Violation("skipped_without_reason", name, "REPLY_SKIPPED"))
    _judge_endings(name, record, report)
    outcomes = record.outcomes
    if len(outcomes) > 1:
        described = ", ".join(f"{k}:{v}" for k, v in sorted(outcomes))
        report.violations.append(Violation("multiple_outcomes", name, described))
    if outcomes:
        state, value = sorted(outcomes)[0]
        if state == "skipped":
            report.skip_reasons[value] += 1
        elif state == "failed":
            report.fail_reasons[value] += 1
        return state
    if record.parked:
        return "parked"
    if busy:
        return "in_flight"
    if record.analysis_failed:
        report.violations.append(
            Violation("analysis_failed_unanswered", name, "MESSAGE_ANALYSIS_FAILED, no outcome")
        )
        return "analysis_failed"
    report.violations.append(Violation("lost", name, "no outcome, nothing parked, bus idle"))
    return "lost"


def _judge_endings(name: str, record: MessageRecord, report: LedgerReport) -> None:
    """At most one analysis ending per message; counted by its type."""
    types = sorted(record.endings.values())
    if len(types) > 1:
        report.violations.append(Violation("multiple_analysis_endings", name, ", ".join(types)))
    for detail_type in set(types):
        report.analysis_endings[detail_type] += 1


def _name(key: MessageKey) -> str:
    return f"{key[0]}:{key[1]}"


# --- presentation ---------------------------------------------------------------------------


def format_report(report: LedgerReport, limit: int = 20) -> str:
    """A few lines a person can act on."""
    states = ", ".join(f"{n} {s}" for s, n in sorted(report.states.items())) or "none"
    lines = [
        f"messages: {report.messages} ({states})",
        f"replies in the outbox: {report.outbox_files}; duplicate events absorbed: "
        f"{report.duplicate_events}; refused SEND_TWEET commands: {report.refused_commands}",
        f"dead letters: {report.dead_letters}; bus deliveries outstanding: {report.outstanding}",
    ]
    if report.torn_lines:
        # A torn record was an event the lake lost part of; the bus still has the event.
        lines.append(f"{report.torn_lines}: not JSON, left out of this check")
    if report.analysis_endings:
        lines.append("analysis endings: " + _counts(report.analysis_endings))
    if report.skip_reasons:
        lines.append("skipped: " + _counts(report.skip_reasons))
    if report.fail_reasons:
        lines.append("failed: " + _counts(report.fail_reasons))
    if report.states["parked"]:
        lines.append("parked messages finish with: magpie replay --dead-letters")
    if report.violations:
        lines.append(f"VIOLATIONS: {_counts(Counter(v.kind for v in report.violations))}")
        lines += [f"  {v.kind}: {v.message} ({v.detail})" for v in report.violations[:limit]]
        if len(report.violations) > limit:
            lines.append(f"  ... and {len(report.violations) - limit} more")
    else:
        lines.append("the ledger holds: no message lost, none answered twice")
    if not report.settled:
        lines.append("not settled: deliveries are still pending on the bus")
    return "\n".join(lines)


def _counts(counter: Counter) -> str:
    return ", ".join(f"{k} {n}" for k, n in counter.most_common())


def exit_code(report: LedgerReport, *, allow_parked: bool = True) -> int:
    """0 holds and settled, 1 violations, 3 unsettled (in flight, or parked when not allowed)."""
    if not report.holds:
        return 1
    if not report.settled or (not allow_parked and report.states["parked"]):
        return 3
    return 0


def read_expected(path: Path) -> list[MessageKey]:
    """Acknowledged messages, one `<Kind> <MessageId>` per line (what `magpie loadtest` writes)."""
    keys = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            keys.append((parts[0], parts[1]))
    return keys
