"""An analysis execution that stopped without publishing, reported from Step Functions'
"Execution Status Change" event (the shapes of the Step Functions developer guide's
examples), through the core app's handler on the local backend."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client
from magpie.apps import load_app

from chalicelib import backend
from chalicelib.analysis.steps import ExecutionInputMissing

FIXTURE = "tests/fixtures/events/MESSAGE_RECEIVED.json"
EXECUTION = "arn:aws:states:us-east-1:012345678912:execution:state-machine-name:execution-name"


def status_change(status: str, execution_input: str | None) -> dict:
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "012345678912",
        "time": "2019-02-26T19:42:21Z",
        "region": "us-east-1",
        "resources": [EXECUTION],
        "detail": {
            "executionArn": EXECUTION,
            "stateMachineArn": "arn:aws:states:us-east-1:012345678912:stateMachine:state-machine",
            "name": "execution-name",
            "status": status,
            "startDate": 1551224926156,
            "stopDate": None if status == "RUNNING" else 1551224927157,
            "input": execution_input,
            "inputDetails": {"included": execution_input is not None},
            "output": None,
            "outputDetails": None,
        },
    }


@pytest.fixture
def core(local_env):
    with Client(load_app("core").app) as client:
        yield client


def received() -> str:
    from tests.conftest import ROOT

    detail = json.loads((ROOT / FIXTURE).read_text())
    return json.dumps(
        {"detail-type": "MESSAGE_RECEIVED", "source": "magpie.ingress", "detail": detail}
    )


def published() -> list[dict]:
    return [envelope for _, envelope in backend.local_bus_store().events_since(0)]


def invoke(core, event: dict) -> dict | None:
    return core.lambda_.invoke("analysis_stopped", event).payload


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("TIMED_OUT", "ExecutionTimedOut"),
        ("ABORTED", "ExecutionAborted"),
        ("FAILED", "ExecutionFailed"),
    ],
)
def test_a_stopped_execution_publishes_message_analysis_failed_once(core, status, error):
    event = status_change(status, received())
    detail = invoke(core, event)
    invoke(core, event)  # EventBridge delivers at least once

    assert detail["Reason"] == f"{error}: the analysis execution ended {status}"
    failed, skipped = published()
    assert failed["detail-type"] == "MESSAGE_ANALYSIS_FAILED"
    assert failed["detail"]["MessageId"] == "2077393668393734144"
    assert skipped["detail-type"] == "REPLY_SKIPPED"
    assert skipped["detail"]["Reason"] == "analysis_failed"


@pytest.mark.parametrize("status", ["RUNNING", "SUCCEEDED"])
def test_other_statuses_publish_nothing(core, status):
    assert invoke(core, status_change(status, "{}")) is None
    assert published() == []


def test_an_execution_without_its_input_is_refused_by_name(local_env):
    from chalicelib.analysis.steps import analysis_stopped

    with pytest.raises(ExecutionInputMissing, match="execution-name"):
        analysis_stopped(status_change("TIMED_OUT", None))
    assert published() == []
