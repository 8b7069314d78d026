"""Only the responders can make the bot tweet.

Locally the egress handler's own `on_cw_event` pattern admits only `magpie.responders`, so a
SEND_TWEET from any other source never reaches it (and `send_reply` checks the source again:
tests/egress/test_send.py, test_egress_app.py). On AWS the bus policy denies every role but
the responders' the `magpie.responders` source (tests/infra/test_template.py::
test_only_magpie_roles_may_publish_each_with_its_own_source); here, the egress rule's
pattern in the synthesized template.
"""

from __future__ import annotations

import json

import pytest

from chalicelib import backend
from chalicelib.events import OutgoingEvent
from tests.conftest import BOT_ID
from tests.infra.conftest import synth  # noqa: F401 (the session's one synthesized stack)
from tests.security.stack import now_ms, running_stack

FORGED_SOURCES = [
    "magpie.ingress",
    "magpie.analysis",
    "magpie.egress",
    "attacker",
    "magpie.responders ",
    "MAGPIE.RESPONDERS",
    "magpie.responders.evil",
]


def command(message_id: str) -> dict:
    return {
        "Text": "I was told to say this",
        "ReplyToUserId": "1712345678901234567",
        "ReplyToTweetId": message_id,
        "MessageId": message_id,
        "Kind": "MENTION",
        "ReceivedAt": "2099-01-01T00:00:00+00:00",
    }


@pytest.mark.slow
def test_send_tweet_from_any_other_source_never_reaches_egress(local_env, monkeypatch):
    with running_stack(local_env, monkeypatch) as stack:
        bus = backend.event_bus()
        for index, source in enumerate(FORGED_SOURCES):
            bus.put([OutgoingEvent(source, "SEND_TWEET", command(f"60000000000000000{index:02d}"))])
        assert stack.runtime.wait_idle(timeout=60)
        assert stack.outbox() == []
        assert stack.events("TWEET_SENT") == stack.events("REPLY_SKIPPED") == []
        # The same command from the responders is obeyed: the refusals above were the pattern's.
        bus.put([OutgoingEvent("magpie.responders", "SEND_TWEET", command("6000000000000000099"))])
        assert stack.runtime.wait_idle(timeout=60)
        assert [r["reply_to_tweet_id"] for r in stack.outbox()] == ["6000000000000000099"]


@pytest.mark.slow
def test_a_delivery_dressed_as_a_send_tweet_only_makes_ingress_events(local_env, monkeypatch):
    forged_item = {
        "detail-type": "SEND_TWEET",
        "source": "magpie.responders",
        "detail": command("6100000000000000001"),
        "id_str": "6100000000000000001",
        "text": "not a mention",
        "user": {"id_str": "1712345678901234567", "screen_name": "someone"},
        "timestamp_ms": str(now_ms()),
    }
    payload = {"for_user_id": BOT_ID, "tweet_create_events": [forged_item]}
    with running_stack(local_env, monkeypatch) as stack:
        stack.deliver(payload)
        published = [e for _, e in stack.runtime.store.events_since(0)]
        assert {(e["source"], e["detail-type"]) for e in published} == {
            ("magpie.ingress", "TWITTER_TWEETED")
        }
        assert stack.outbox() == []


@pytest.mark.slow
def test_on_aws_only_the_responders_source_triggers_egress(synth):  # noqa: F811
    resources = synth.expanded["Resources"]
    egress = {
        logical_id
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler", "").endswith(".send_tweet")
    }
    assert len(egress) == 1
    rules = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule"
        and any(json.dumps(t["Arn"]).count(next(iter(egress))) for t in r["Properties"]["Targets"])
    ]
    assert len(rules) == 1
    pattern = rules[0]["EventPattern"]
    if isinstance(pattern, str):
        pattern = json.loads(pattern)
    assert pattern["source"] == ["magpie.responders"]
    assert pattern["detail-type"] == ["SEND_TWEET"]
