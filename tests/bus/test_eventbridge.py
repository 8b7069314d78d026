"""The EventBridge adapter: batches of 10, failed entries retried, never dropped silently."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from chalicelib.bus import PublishError
from chalicelib.bus.eventbridge import EventBridgeBus
from chalicelib.events import OutgoingEvent


@pytest.fixture
def client(aws_credentials):
    return boto3.client("events", region_name="eu-west-1")


def events(n: int) -> list[OutgoingEvent]:
    return [OutgoingEvent("magpie.ingress", "TWITTER_FAVOURITED", {"id": i}) for i in range(n)]


def ok(n: int) -> dict:
    return {"FailedEntryCount": 0, "Entries": [{"EventId": f"e{i}"} for i in range(n)]}


def test_entries_carry_source_type_detail_and_bus(client):
    with Stubber(client) as stub:
        stub.add_response(
            "put_events",
            ok(1),
            {
                "Entries": [
                    {
                        "Source": "magpie.ingress",
                        "DetailType": "TWITTER_FAVOURITED",
                        "Detail": json.dumps({"id": 0}, separators=(",", ":")),
                        "EventBusName": "magpie",
                    }
                ]
            },
        )
        EventBridgeBus(client, "magpie").put(events(1))
        stub.assert_no_pending_responses()


def test_23_events_go_in_three_calls(client):
    with Stubber(client) as stub:
        for size in (10, 10, 3):
            stub.add_response("put_events", ok(size), {"Entries": ANY})
        EventBridgeBus(client, "magpie").put(events(23))
        stub.assert_no_pending_responses()


def test_failed_entries_are_retried_alone(client):
    sent = []
    client.meta.events.register(
        "provide-client-params.events.PutEvents",
        lambda params, **_: sent.append([json.loads(e["Detail"])["id"] for e in params["Entries"]]),
    )
    with Stubber(client) as stub:
        stub.add_response(
            "put_events",
            {
                "FailedEntryCount": 2,
                "Entries": [
                    {"EventId": "a"},
                    {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"},
                    {"EventId": "c"},
                    {"ErrorCode": "InternalFailure", "ErrorMessage": "oops"},
                ],
            },
            {"Entries": ANY},
        )
        stub.add_response("put_events", ok(2), {"Entries": ANY})
        EventBridgeBus(client, "magpie", sleep=lambda s: None).put(events(4))
    assert sent == [[0, 1, 2, 3], [1, 3]]


def test_entries_still_failing_raise(client):
    failing = {
        "FailedEntryCount": 1,
        "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "oops"}],
    }
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_response("put_events", failing, {"Entries": ANY})
        with pytest.raises(PublishError, match="still rejected"):
            EventBridgeBus(client, "magpie", attempts=3, sleep=lambda s: None).put(events(1))


def test_service_error_is_a_publish_error(client):
    with Stubber(client) as stub:
        stub.add_client_error("put_events", "ResourceNotFoundException", "no bus")
        with pytest.raises(PublishError, match="PutEvents failed"):
            EventBridgeBus(client, "magpie").put(events(1))


def test_oversize_event_is_refused_before_sending(client):
    big = OutgoingEvent("magpie.analysis", "MESSAGE_ANALYSED", {"Text": "x" * 300_000})
    with pytest.raises(PublishError, match="256 KiB"):
        EventBridgeBus(client, "magpie").put([big])
