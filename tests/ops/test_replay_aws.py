"""`magpie replay --aws`: an EventBridge archive replay with the same options as locally."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber
from magpie.cli import main
from magpie.replay import ReplayError, start_aws_replay, wait_for_replay
from moto import mock_aws

from chalicelib import backend
from chalicelib.errors import ConfigurationError

REGION = "eu-west-1"
BUS = "arn:aws:events:eu-west-1:123456789012:event-bus/magpie"
ARCHIVE = "arn:aws:events:eu-west-1:123456789012:archive/magpie-archive"


def rule(name: str, pattern: dict | None) -> dict:
    entry = {"Name": name, "Arn": f"arn:aws:events:eu-west-1:123456789012:rule/magpie/{name}"}
    if pattern is not None:
        entry["EventPattern"] = json.dumps(pattern)
    return entry


@pytest.fixture
def stubbed(aws_credentials):
    client = boto3.client("events", region_name=REGION)
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def test_detail_type_becomes_the_rules_that_name_it(stubbed):
    client, stub = stubbed
    stub.add_response(
        "describe_archive",
        {"ArchiveName": "magpie-archive", "EventSourceArn": BUS},
        {"ArchiveName": "magpie-archive"},
    )
    rules = [
        rule("analysis", {"source": ["magpie.ingress"], "detail-type": ["MESSAGE_RECEIVED"]}),
        rule("lake", {"account": ["123456789012"]}),  # catch-all: must not get a copy
        rule("egress", {"detail-type": ["SEND_TWEET"]}),
        rule("nightly", None),  # a schedule has no pattern
    ]
    stub.add_response(
        "list_rules", {"Rules": rules[:2], "NextToken": "p2"}, {"EventBusName": "magpie"}
    )
    stub.add_response(
        "list_rules", {"Rules": rules[2:]}, {"EventBusName": "magpie", "NextToken": "p2"}
    )
    stub.add_response(
        "start_replay",
        {"ReplayArn": "arn:aws:events:eu-west-1:123456789012:replay/r1", "State": "STARTING"},
        {
            "ReplayName": "r1",
            "Description": "magpie replay of MESSAGE_RECEIVED",
            "EventSourceArn": ARCHIVE,
            "EventStartTime": datetime(2026, 7, 15, 10, 0, tzinfo=UTC),
            "EventEndTime": datetime(2026, 7, 15, 11, 0, tzinfo=UTC),
            "Destination": {"Arn": BUS, "FilterArns": [rules[0]["Arn"]]},
        },
    )
    started = start_aws_replay(
        client,
        archive_arn=ARCHIVE,
        start="2026-07-15T10:00:00Z",
        end="2026-07-15T11:00:00Z",
        name="r1",
        detail_types=["MESSAGE_RECEIVED"],
    )
    assert started["State"] == "STARTING"
    assert started["Destination"] == {"Arn": BUS, "FilterArns": [rules[0]["Arn"]]}


def test_explicit_rules_and_bus_need_no_lookup_of_patterns(stubbed):
    client, stub = stubbed
    stub.add_response(
        "describe_archive", {"EventSourceArn": BUS}, {"ArchiveName": "magpie-archive"}
    )
    other_bus = "arn:aws:events:eu-west-1:123456789012:event-bus/staging"
    stub.add_response(
        "start_replay",
        {"State": "STARTING"},
        {
            "ReplayName": ANY,
            "Description": "magpie replay",
            "EventSourceArn": ARCHIVE,
            "EventStartTime": ANY,
            "EventEndTime": ANY,
            "Destination": {"Arn": other_bus, "FilterArns": ["arn:rule/x"]},
        },
    )
    started = start_aws_replay(
        client,
        archive_arn=ARCHIVE,
        start="2026-07-15T10:00:00Z",
        end="2026-07-15T11:00:00Z",
        rule_arns=["arn:rule/x"],
        bus_arn=other_bus,
    )
    assert started["ReplayName"].startswith("magpie-replay-")


def test_a_detail_type_no_rule_names_is_refused(stubbed):
    client, stub = stubbed
    stub.add_response(
        "describe_archive", {"EventSourceArn": BUS}, {"ArchiveName": "magpie-archive"}
    )
    stub.add_response(
        "list_rules", {"Rules": [rule("lake", {"account": ["1"]})]}, {"EventBusName": "magpie"}
    )
    with pytest.raises(ReplayError, match="no rule"):
        start_aws_replay(
            client,
            archive_arn=ARCHIVE,
            start="2026-07-15T10:00:00Z",
            end="2026-07-15T11:00:00Z",
            detail_types=["TWEET_SENT"],
        )


def test_bad_archive_arn_is_refused(stubbed):
    client, _ = stubbed
    with pytest.raises(ReplayError, match="archive ARN"):
        start_aws_replay(client, archive_arn=BUS, start="2026-07-15T10:00:00Z",
                         end="2026-07-15T11:00:00Z")  # fmt: skip


def test_wait_polls_until_the_replay_ends(stubbed):
    client, stub = stubbed
    for state in ("STARTING", "RUNNING", "COMPLETED"):
        stub.add_response("describe_replay", {"State": state}, {"ReplayName": "r1"})
    slept = []
    final = wait_for_replay(client, "r1", timeout=60, poll=5, sleep=slept.append)
    assert final["State"] == "COMPLETED" and slept == [5, 5]


# --- the command, against moto's EventBridge (archives and replays really run) -----------


def test_replay_command_replays_the_archive_to_the_rules_of_a_detail_type(
    aws_credentials, monkeypatch, capsys
):
    with mock_aws():
        backend.reset()
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        bus = events.create_event_bus(Name="magpie")["EventBusArn"]
        archive = events.create_archive(ArchiveName="magpie-archive", EventSourceArn=bus)
        taps = {}
        for name, pattern in (
            ("analysis", {"detail-type": ["MESSAGE_RECEIVED"]}),
            ("lake", {"source": ["magpie.ingress"]}),
        ):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            events.put_rule(Name=name, EventBusName="magpie", EventPattern=json.dumps(pattern))
            events.put_targets(
                Rule=name,
                EventBusName="magpie",
                Targets=[{"Id": "tap", "Arn": arn["Attributes"]["QueueArn"]}],
            )
            taps[name] = url
        start = datetime.now(UTC) - timedelta(minutes=1)
        events.put_events(
            Entries=[
                {
                    "Source": "magpie.ingress",
                    "DetailType": kind,
                    "Detail": "{}",
                    "EventBusName": "magpie",
                }
                for kind in ("MESSAGE_RECEIVED", "TWITTER_TWEETED")
            ]
        )
        for url in taps.values():  # drain the original deliveries
            sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)

        monkeypatch.setenv("MAGPIE_ARCHIVE_ARN", archive["ArchiveArn"])
        end = datetime.now(UTC) + timedelta(minutes=1)
        window = ["--from", start.isoformat(), "--to", end.isoformat()]
        args = ["replay", "--aws", "--detail-type", "MESSAGE_RECEIVED", "--wait", *window]
        args += ["--name", "fix-1"]
        assert main(args) == 0
        out = capsys.readouterr().out
        assert "started EventBridge replay fix-1" in out and "COMPLETED" in out

        replayed = sqs.receive_message(QueueUrl=taps["analysis"], MaxNumberOfMessages=10)
        bodies = [json.loads(m["Body"]) for m in replayed["Messages"]]
        assert [(b["detail-type"], b["replay-name"]) for b in bodies] == [
            ("MESSAGE_RECEIVED", "fix-1")
        ]
        # Only the rule that names MESSAGE_RECEIVED is a destination: the catch-all (the
        # lake) is left out. (moto delivers a replay to every rule whatever FilterArns say,
        # so this is read from the replay itself; the request is pinned with Stubber above.)
        destination = events.describe_replay(ReplayName="fix-1")["Destination"]
        assert destination["FilterArns"] == [
            events.describe_rule(Name="analysis", EventBusName="magpie")["Arn"]
        ]
    backend.reset()


def test_replay_command_with_aws_needs_an_archive(aws_credentials, monkeypatch, capsys):
    monkeypatch.delenv("MAGPIE_ARCHIVE_ARN", raising=False)
    backend.reset()
    assert main(["replay", "--aws", "--from", "2h", "--to", "now"]) == ConfigurationError.exit_code
    assert "MAGPIE_ARCHIVE_ARN" in capsys.readouterr().err
