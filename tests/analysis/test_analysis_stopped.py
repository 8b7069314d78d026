"""An analysis execution that ended without publishing, reported from the state machine's
log: the core app's handlers on the AWS backend, against moto's DynamoDB (the idempotency
table) and EventBridge (the bus, tapped by an SQS queue).

The events are real-shaped: CloudWatch Logs' subscription event (base64 of the gzipped
{"messageType", "logGroup", "logStream", "subscriptionFilters", "logEvents"}) carrying Step
Functions' log events as the Step Functions developer guide documents them (id, type,
details, previous_event_id, event_timestamp, execution_arn).
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import time

import boto3
import pytest
from chalice.test import Client
from magpie.apps import load_app
from moto import mock_aws

from chalicelib import backend
from chalicelib.analysis.endings import LogDeliveryUnreadable
from chalicelib.analysis.executions import DynamoDbExecutions
from tests.conftest import ROOT, create_idempotency_table

FIXTURE = ROOT / "tests" / "fixtures" / "events" / "MESSAGE_RECEIVED.json"
ACCOUNT = "123456789012"
TABLE = "magpie-idempotency"
BUS = "magpie"
LOG_GROUP = "/aws/vendedlogs/states/magpie-analysis"
EXECUTION = (
    "arn:aws:states:eu-west-1:123456789012:express:magpie-analysis:"
    "6a7e8feb-b491-4cf7-a9f1-bf3703467718:1b1c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"
)


def message() -> dict:
    return json.loads(FIXTURE.read_text())


def log_event(kind: str, details: dict | None = None, execution: str = EXECUTION) -> dict:
    """One Step Functions log event, as an Express execution logs it at level ERROR."""
    return {
        "id": "9",
        "type": kind,
        "details": details if details is not None else {},
        "previous_event_id": "8",
        "event_timestamp": "1784124222113",
        "execution_arn": execution,
        "redrive_count": "0",
    }


def delivery(*events: dict, message_type: str = "DATA_MESSAGE") -> dict:
    """CloudWatch Logs' event for a Lambda subscription filter."""
    data = {
        "messageType": message_type,
        "owner": ACCOUNT,
        "logGroup": LOG_GROUP,
        "logStream": "states/magpie-analysis/2026-07-15-14-03/5a9e0b1c",
        "subscriptionFilters": ["MagpieStack-AnalysisEndingsB2A1F0C5-Xq2Z7k1LmN3p"],
        "logEvents": [
            {
                "id": f"3785061219218466263650126185416154466264934876582{n:05d}",
                "timestamp": 1784124222113 + n,
                "message": json.dumps(event, separators=(",", ":")),
            }
            for n, event in enumerate(events)
        ],
    }
    packed = gzip.compress(json.dumps(data).encode())
    return {"awslogs": {"data": base64.b64encode(packed).decode()}}


class Tap:
    """Everything published on the moto bus, through an SQS queue."""

    def __init__(self) -> None:
        sqs, eventbridge = boto3.client("sqs"), boto3.client("events")
        self.sqs = sqs
        self.url = sqs.create_queue(QueueName="tap")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        eventbridge.create_event_bus(Name=BUS)
        eventbridge.put_rule(
            Name="tap", EventBusName=BUS, EventPattern=json.dumps({"source": ["magpie.analysis"]})
        )
        eventbridge.put_targets(Rule="tap", EventBusName=BUS, Targets=[{"Id": "t", "Arn": arn}])

    def drain(self) -> list[dict]:
        found = []
        while batch := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            found.extend(json.loads(m["Body"]) for m in batch)
            for m in batch:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        return found


@pytest.fixture
def tap(aws_credentials, monkeypatch):
    with mock_aws():
        monkeypatch.setenv("MAGPIE_BACKEND", "aws")
        monkeypatch.setenv("IDEMPOTENCY_TABLE", TABLE)
        monkeypatch.setenv("EVENT_BUS_NAME", BUS)
        monkeypatch.setenv("MEDIA_BUCKET", "magpie-media")
        backend.reset()
        create_idempotency_table(TABLE)
        yield Tap()
        backend.reset()


@pytest.fixture
def core(tap):
    with Client(load_app("core").app) as client:
        yield client


def invoke(core, name: str, event: dict) -> dict:
    return core.lambda_.invoke(name, event).payload


def started(core, execution: str = EXECUTION) -> None:
    """The execution's first step, as the state machine calls it: it records the message."""
    detail = {**message(), "ImageUrls": []}
    downloaded = invoke(core, "download_media", {"Message": detail, "Execution": execution})
    assert downloaded["Media"] == []


@pytest.mark.parametrize(
    ("kind", "details", "reason"),
    [
        (
            "ExecutionTimedOut",
            {},
            "ExecutionTimedOut: the analysis execution timed out",
        ),
        (
            "ExecutionFailed",
            {
                "error": "States.DataLimitExceeded",
                "cause": "The state/task 'AnalyseImages' returned a result with a size "
                "exceeding the maximum number of bytes service limit.",
            },
            "States.DataLimitExceeded: The state/task 'AnalyseImages' returned a result",
        ),
        (
            "ExecutionAborted",
            {"error": "", "cause": ""},
            "ExecutionAborted: the analysis execution was aborted",
        ),
    ],
)
def test_an_ending_only_the_log_reports_publishes_message_analysis_failed_once(
    core, tap, kind, details, reason
):
    started(core)
    ending = delivery(
        log_event("TaskFailed", {"resourceType": "lambda", "error": "Sandbox.Timedout"}),
        log_event(kind, details),
    )

    outcome = invoke(core, "analysis_stopped", ending)
    invoke(core, "analysis_stopped", ending)  # CloudWatch Logs and Lambda deliver at least once

    assert outcome == {
        "Reported": [{"Execution": EXECUTION, "MessageId": "2077393668393734144"}],
        "Skipped": [],
    }
    failed, skipped = sorted(
        tap.drain(), key=lambda e: e["detail-type"] != "MESSAGE_ANALYSIS_FAILED"
    )
    assert failed["detail-type"] == "MESSAGE_ANALYSIS_FAILED"
    assert failed["detail"]["MessageId"] == "2077393668393734144"
    assert failed["detail"]["Reason"].startswith(reason)
    assert skipped["detail-type"] == "REPLY_SKIPPED"
    assert skipped["detail"]["Reason"] == "analysis_failed"


def test_the_workflows_own_fail_state_is_not_reported_again(core, tap):
    started(core)
    invoke(  # the workflow's Catch: PublishAnalysisFailed, then the Fail state
        core,
        "publish_analysis_failed",
        {"Message": message(), "Error": {"Error": "States.TaskFailed", "Cause": "boom"}},
    )
    assert len(tap.drain()) == 2
    fail_state = log_event(
        "ExecutionFailed",
        {"error": "AnalysisFailed", "cause": "MESSAGE_ANALYSIS_FAILED was published"},
    )

    outcome = invoke(core, "analysis_stopped", delivery(fail_state))

    assert outcome["Reported"] == []
    assert outcome["Skipped"] == [
        {
            "Execution": EXECUTION,
            "Reason": "the workflow published MESSAGE_ANALYSIS_FAILED itself",
        }
    ]
    assert tap.drain() == []


def test_an_ending_already_reported_is_not_published_twice(core, tap):
    """PublishAnalysisFailed published, then the execution timed out before it could end:
    the ending's report finds the message's idempotency key taken."""
    started(core)
    invoke(
        core,
        "publish_analysis_failed",
        {"Message": message(), "Error": {"Error": "States.TaskFailed", "Cause": "boom"}},
    )
    first = [e for e in tap.drain() if e["detail-type"] == "MESSAGE_ANALYSIS_FAILED"]

    outcome = invoke(core, "analysis_stopped", delivery(log_event("ExecutionTimedOut")))

    assert outcome["Reported"] == [{"Execution": EXECUTION, "MessageId": "2077393668393734144"}]
    assert tap.drain() == []
    assert first[0]["detail"]["Reason"] == "States.TaskFailed: boom"


def test_an_execution_whose_record_expired_is_logged_and_skipped_with_the_reason(core, tap, caplog):
    # Recorded, but long ago: DynamoDB deletes an expired item only eventually.
    table = DynamoDbExecutions(boto3.client("dynamodb"), TABLE)
    table.remember(EXECUTION, message(), expires_at=1_700_000_000)
    unknown = EXECUTION.replace("1b1c3d4e", "00000000")

    with caplog.at_level(logging.WARNING, logger="chalicelib.analysis.endings"):
        outcome = invoke(
            core,
            "analysis_stopped",
            delivery(log_event("ExecutionTimedOut"), log_event("ExecutionAborted", None, unknown)),
        )

    reason = (
        "no record of the message it analysed (expired, or the execution ended before its "
        "first step recorded it)"
    )
    assert outcome == {
        "Reported": [],
        "Skipped": [
            {"Execution": EXECUTION, "Reason": reason},
            {"Execution": unknown, "Reason": reason},
        ],
    }
    assert tap.drain() == []
    assert [r.getMessage() for r in caplog.records] == [
        f"analysis execution {EXECUTION} ExecutionTimedOut: skipped, {reason}",
        f"analysis execution {unknown} ExecutionAborted: skipped, {reason}",
    ]


def test_the_first_step_records_its_execution_for_a_day(core, tap):
    started(core)

    item = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"id": {"S": f"analysis-execution:{EXECUTION}"}}
    )["Item"]
    assert json.loads(item["message"]["S"])["MessageId"] == "2077393668393734144"
    assert DynamoDbExecutions(boto3.client("dynamodb"), TABLE).recall(EXECUTION) is not None
    assert 23 * 3600 < int(item["expiration"]["N"]) - time.time() <= 24 * 3600


def test_a_reachability_check_and_other_log_events_report_nothing(core, tap):
    started(core)
    assert invoke(core, "analysis_stopped", delivery(message_type="CONTROL_MESSAGE")) == {
        "Reported": [],
        "Skipped": [],
    }
    others = delivery(
        log_event("LambdaFunctionFailed", {"error": "Lambda.Unknown"}),
        log_event("FailStateEntered", {"name": "AnalysisFailed"}),
    )
    assert invoke(core, "analysis_stopped", others) == {"Reported": [], "Skipped": []}
    assert tap.drain() == []


def test_an_unreadable_delivery_is_refused_by_name(tap):
    from chalicelib.analysis.endings import analysis_stopped

    with pytest.raises(LogDeliveryUnreadable, match="not a CloudWatch Logs subscription event"):
        analysis_stopped({"awslogs": {"data": base64.b64encode(b"not gzip").decode()}})
    with pytest.raises(LogDeliveryUnreadable, match="not JSON"):
        packed = gzip.compress(
            json.dumps(
                {"messageType": "DATA_MESSAGE", "logEvents": [{"message": "{oops"}]}
            ).encode()
        )
        analysis_stopped({"awslogs": {"data": base64.b64encode(packed).decode()}})
    with pytest.raises(LogDeliveryUnreadable, match="ExecutionTimedOut log event names no"):
        analysis_stopped(delivery(log_event("ExecutionTimedOut", execution="")))
    assert tap.drain() == []
