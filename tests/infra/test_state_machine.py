"""The synthesized analysis state machine, executed by moto's Step Functions interpreter.

The definition is taken from the synthesized template, with each function ARN pointed at a
moto Lambda of the same name. moto cannot run Lambda code without Docker (its simple backend
echoes input or pops results from one global queue, which parallel branches would consume in
any order), so each invocation is routed, by function name, to the core app's real handler
in this process (`app.download_media`, `app.analyse_text`, ...), running the AWS backend
against moto's S3 and EventBridge. Only the providers are fakes: the image fetch, Comprehend
and Rekognition. What reaches an SQS tap on the moto bus is the event the state machine's
last step really published, built from the state the definition passed it.

A Lambda that crashes is emulated by answering the invocation with a function error, as
Lambda does; the definition's Retry and Catch then act on it.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from chalicelib import events

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "infra"))  # appended: infra/app.py must never shadow `app`
FIXTURE = ROOT / "tests" / "fixtures" / "events" / "MESSAGE_RECEIVED.json"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUS = "magpie"
BUCKET = "magpie-media-test"
MACHINE_TYPE = "EXPRESS"  # as the stack deploys it
TABLE = "magpie-idempotency-test"
HANG_SECONDS = 2.5  # a hung step, scaled: longer than SCALED_TASK_TIMEOUT
SCALED_TASK_TIMEOUT = 1  # every task's TimeoutSeconds in the scaled-down definition
STEPS = (
    "download_media",
    "analyse_text",
    "analyse_image",
    "publish_analysis",
    "publish_analysis_failed",
)


# --- the definition, resolved --------------------------------------------------------------


def _function_names(template: dict[str, Any]) -> dict[str, str]:
    """logical id -> Chalice function name, from each function's handler (app.<name>)."""
    return {
        logical_id: resource["Properties"]["Handler"].split(".", 1)[1]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        and resource["Properties"]["Handler"] != "app.app"
    }


def resolved_definition(template: dict[str, Any], arn_for: dict[str, str]) -> dict[str, Any]:
    names = _function_names(template)
    (machine,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    separator, parts = machine["Properties"]["DefinitionString"]["Fn::Join"]
    text = []
    for part in parts:
        if isinstance(part, str):
            text.append(part)
            continue
        logical_id, attribute = part["Fn::GetAtt"]
        assert attribute == "Arn", part
        text.append(arn_for[names[logical_id]])
    return json.loads(separator.join(text))


# --- fakes for the providers only --------------------------------------------------------


class FakeText:
    def detect_language(self, text: str) -> dict[str, Any]:
        return {"LanguageCode": "en", "Score": 0.99}

    def sentiment(self, texts: list[str], language: str) -> list[dict[str, Any]]:
        score = {"Positive": 0.02, "Negative": 0.95, "Neutral": 0.02, "Mixed": 0.01}
        return [{"Sentiment": "NEGATIVE", "SentimentScore": score} for _ in texts]

    def entities(self, text: str, language: str) -> list[dict[str, Any]]:
        return [{"Text": "acme", "Type": "ORGANIZATION", "Score": 0.9}]

    def key_phrases(self, text: str, language: str) -> list[dict[str, Any]]:
        return [{"Text": "these two", "Score": 0.8}]


class FakeImages:
    waits_on_network = False  # answers at once, like the local models

    def labels(self, key: str) -> list[dict[str, Any]]:
        return [{"Name": "Bird", "Confidence": 98.5}]

    def text(self, key: str) -> list[dict[str, Any]]:
        return []

    def faces(self, key: str) -> dict[str, list[dict[str, Any]]]:
        return {
            "CelebrityFaces": [{"Name": "Grace Hopper", "MatchConfidence": 99.0}],
            "UnrecognizedFaces": [],
        }

    def moderation(self, key: str) -> list[dict[str, Any]]:
        return []


def png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def factory(adapter: Any) -> Any:
    """Stands in for one of chalicelib.backend's cached adapter factories."""

    def make() -> Any:
        return adapter

    make.cache_clear = lambda: None  # type: ignore[attr-defined]
    return make


@functools.cache
def core_app() -> Any:
    """The root Chalice app's module, loaded by path under its own name."""
    spec = importlib.util.spec_from_file_location("magpie_core_app_under_sfn", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class Lambdas:
    """Routes moto's Lambda invocations to the core app's handlers; records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.crash: dict[str, Any] = {}  # function name -> predicate(payload) -> bool
        self.hang: dict[str, Any] = {}  # function name -> predicate(payload) -> bool
        # function name -> predicate(payload) -> bool: the handler did all its work (its
        # records written, its events published), then the Lambda died before answering.
        self.crash_after: dict[str, Any] = {}

    def invoke(
        self,
        backend: Any,
        function_name: str,
        qualifier: Any,
        body: Any,
        headers: Any,
        response_headers: dict[str, str],
    ) -> bytes:
        name = function_name.split(":function:")[-1].split(":")[0]  # an ARN or a name
        payload = json.loads(body) if body else {}
        self.calls.append((name, payload))
        try:
            if name in self.crash and self.crash[name](payload):
                raise RuntimeError(f"{name} crashed")
            result = getattr(core_app(), name)(payload, None)  # app.<name>(event, context)
            if name in self.crash_after and self.crash_after[name](payload):
                raise RuntimeError(f"{name} died before answering")
            if name in self.hang and self.hang[name](payload):
                # Hung after its work (a record written, an object stored): the answer
                # comes past the (scaled) task timeout.
                time.sleep(HANG_SECONDS)
        except Exception as exc:  # answered as the Python runtime answers an unhandled error
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "requestId": "7c5e5c1a-8a1f-4b8e-9d0c-1f1f6a3f2f10",
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
            ).encode()
        return json.dumps(result).encode()

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


# --- the world: moto, the bus with its SQS tap, the state machine --------------------------


@pytest.fixture
def world(synth, aws_credentials, monkeypatch):
    import boto3
    from moto import mock_aws
    from moto.awslambda_simple.models import LambdaSimpleBackend

    from chalicelib import backend
    from chalicelib.analysis import media

    core_app()  # imported before the environment changes, as Lambda imports it at start
    lambdas = Lambdas()
    monkeypatch.setattr(
        LambdaSimpleBackend, "invoke", lambda self, *args: lambdas.invoke(self, *args)
    )
    monkeypatch.setenv("MAGPIE_BACKEND", "aws")
    monkeypatch.setenv("MEDIA_BUCKET", BUCKET)
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.setenv("IDEMPOTENCY_TABLE", TABLE)
    monkeypatch.setenv("IMAGE_CAPABILITIES", "labels,text,faces,moderation")
    image = png_bytes()
    monkeypatch.setattr(
        media,
        "download_media",
        functools.partial(media.download_media, fetch=lambda url, **_: (image, "image/png")),
    )

    config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    with mock_aws(config=config):
        backend.reset()
        monkeypatch.setattr(backend, "text_analyser", factory(FakeText()))
        monkeypatch.setattr(backend, "image_analyser", factory(FakeImages()))
        session = boto3.Session(region_name=REGION)
        session.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        session.client("dynamodb").create_table(  # as the stack's, Powertools' key names
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        eventbridge, sqs = session.client("events"), session.client("sqs")
        eventbridge.create_event_bus(Name=BUS)
        queue_url = sqs.create_queue(QueueName="tap")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        eventbridge.put_rule(
            Name="tap", EventBusName=BUS, EventPattern=json.dumps({"source": ["magpie.analysis"]})
        )
        eventbridge.put_targets(
            Rule="tap", EventBusName=BUS, Targets=[{"Id": "tap", "Arn": queue_arn}]
        )

        iam = session.client("iam")
        role = iam.create_role(RoleName="step", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        awslambda = session.client("lambda")
        arns = {}
        for name in STEPS:
            arns[name] = awslambda.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=role,
                Handler=f"app.{name}",
                Code={"ZipFile": b"not run"},
            )["FunctionArn"]
        definition = resolved_definition(synth.template, arns)
        sfn = session.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="magpie-analysis",
            definition=json.dumps(definition),
            roleArn=role,
            type=MACHINE_TYPE,
        )["stateMachineArn"]

        world = World(sfn, machine, sqs, queue_url, lambdas)
        world.definition, world.role = definition, role
        yield world
    backend.reset()


def scaled(definition: dict[str, Any], execution_timeout: int | None = None) -> dict[str, Any]:
    """The definition with every task's timeout scaled down to SCALED_TASK_TIMEOUT, and the
    execution limit to `execution_timeout` or else what budget.py prices the scaled one at."""
    from magpie_stack.budget import MAX_IMAGES, worst_case_seconds

    def scale(states: dict[str, Any]) -> None:
        for state in states.values():
            if state["Type"] == "Task":
                assert state["TimeoutSeconds"] > SCALED_TASK_TIMEOUT
                state["TimeoutSeconds"] = SCALED_TASK_TIMEOUT
            for branch in state.get("Branches", []):
                scale(branch["States"])
            if "ItemProcessor" in state:
                scale(state["ItemProcessor"]["States"])

    copy = json.loads(json.dumps(definition))
    scale(copy["States"])
    priced = math.ceil(worst_case_seconds(copy, MAX_IMAGES))
    copy["TimeoutSeconds"] = execution_timeout or priced
    return copy


class World:
    def __init__(self, sfn: Any, machine: str, sqs: Any, queue_url: str, lambdas: Lambdas) -> None:
        self.sfn, self.machine, self.sqs, self.queue_url = sfn, machine, sqs, queue_url
        self.lambdas = lambdas
        self.definition: dict[str, Any] = {}
        self.role = ""

    def use(self, definition: dict[str, Any], name: str) -> None:
        """Run the following executions on a state machine with this definition."""
        self.machine = self.sfn.create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=self.role, type=MACHINE_TYPE
        )["stateMachineArn"]

    def run(self, detail: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        envelope = {
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "MESSAGE_RECEIVED",
            "source": "magpie.ingress",
            "account": ACCOUNT,
            "time": "2026-07-15T14:03:42Z",
            "region": REGION,
            "resources": [],
            "detail": detail,
        }
        arn = self.sfn.start_execution(stateMachineArn=self.machine, input=json.dumps(envelope))[
            "executionArn"
        ]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            execution = self.sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                return execution
            time.sleep(0.1)
        raise AssertionError(f"execution still running after {timeout}s")

    def tapped(self) -> list[dict[str, Any]]:
        found = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return found
            found.extend(json.loads(m["Body"]) for m in batch)


def message(**changes: Any) -> dict[str, Any]:
    detail = json.loads(FIXTURE.read_text())
    detail.update(changes)
    return detail


# --- the executions ------------------------------------------------------------------------


def test_text_only_message_is_analysed_and_published(world):
    execution = world.run(message(ImageUrls=[]))

    assert execution["status"] == "SUCCEEDED", execution
    (event,) = world.tapped()
    assert (event["source"], event["detail-type"]) == ("magpie.analysis", "MESSAGE_ANALYSED")
    analysed = events.MessageAnalysed.from_detail(event["detail"])
    assert analysed.MessageId == "2077393668393734144"
    assert analysed.Analysis.TextSentiment == "NEGATIVE"
    assert analysed.Analysis.SentimentScore["Negative"] == pytest.approx(0.95)
    assert analysed.Analysis.Images == []  # an array, never {}
    assert analysed.Analysis.Provider == "aws"
    assert world.lambdas.names().count("analyse_image") == 0
    assert world.lambdas.names()[0] == "download_media"
    assert world.lambdas.names()[-1] == "publish_analysis"


def test_two_images_are_each_analysed_and_published_in_order(world):
    execution = world.run(message())

    assert execution["status"] == "SUCCEEDED", execution
    (event,) = world.tapped()
    analysed = events.MessageAnalysed.from_detail(event["detail"])
    keys = [image.Key for image in analysed.Analysis.Images]
    assert keys == [
        "media/2026/07/15/2077393668393734144/0.png",
        "media/2026/07/15/2077393668393734144/1.png",
    ]
    for image in analysed.Analysis.Images:
        assert image.Analysis.Labels == [{"Name": "Bird", "Confidence": 98.5}]
        assert image.Analysis.CelebrityFaces[0]["Name"] == "Grace Hopper"
    assert analysed.Analysis.Errors == []
    assert world.lambdas.names().count("analyse_image") == 2
    # Each image step got one media item of download_media's output, not the whole state.
    images_in = [p for n, p in world.lambdas.calls if n == "analyse_image"]
    assert sorted(p["Key"] for p in images_in) == keys
    assert all(set(p) == {"Url", "Key", "ContentType"} for p in images_in)


def test_a_failing_image_is_recorded_and_the_message_still_published(world):
    world.lambdas.crash["analyse_image"] = lambda payload: payload["Key"].endswith("/1.png")

    execution = world.run(message())

    assert execution["status"] == "SUCCEEDED", execution
    (event,) = world.tapped()
    assert event["detail-type"] == "MESSAGE_ANALYSED"
    analysed = events.MessageAnalysed.from_detail(event["detail"])
    good, bad = analysed.Analysis.Images
    assert good.Analysis.Labels and not bad.Analysis.Labels
    (error,) = analysed.Analysis.Errors
    assert (error.Capability, error.Image) == ("image", bad.Key)
    # Worded as locally: the runtime's JSON and its stack trace stay out of the lake.
    assert error.Error == "RuntimeError: analyse_image crashed"
    # The crash was retried by the definition (1 try + 1 retry) before it was caught.
    crashed = [
        p for n, p in world.lambdas.calls if n == "analyse_image" and p["Key"].endswith("/1.png")
    ]
    assert len(crashed) == 2


def test_a_failing_text_step_publishes_message_analysis_failed(world):
    world.lambdas.crash["analyse_text"] = lambda payload: True

    execution = world.run(message(ImageUrls=[]))

    assert execution["status"] == "FAILED"
    # The failure, and the message's terminal outcome: skipped, with the reason.
    event, skipped = sorted(
        world.tapped(), key=lambda e: e["detail-type"] != "MESSAGE_ANALYSIS_FAILED"
    )
    assert (event["source"], event["detail-type"]) == ("magpie.analysis", "MESSAGE_ANALYSIS_FAILED")
    assert skipped["detail-type"] == "REPLY_SKIPPED"
    assert skipped["detail"]["Reason"] == "analysis_failed"
    failed = events.MessageAnalysisFailed.from_detail(event["detail"])
    assert failed.MessageId == "2077393668393734144"
    assert failed.Reason == "RuntimeError: analyse_text crashed"
    assert world.lambdas.names().count("analyse_text") == 2
    assert "publish_analysis" not in world.lambdas.names()
    (failed_input,) = [p for n, p in world.lambdas.calls if n == "publish_analysis_failed"]
    assert set(failed_input) == {"Message", "Error"}
    assert set(failed_input["Error"]) == {"Error", "Cause"}


# --- time: every ending reports, scaled down -------------------------------------------


def test_a_hung_image_times_out_and_the_message_is_still_published(world):
    world.use(scaled(world.definition), "scaled")
    world.lambdas.hang["analyse_image"] = lambda payload: payload["Key"].endswith("/1.png")

    execution = world.run(message())

    assert execution["status"] == "SUCCEEDED", execution
    (event,) = world.tapped()
    analysed = events.MessageAnalysed.from_detail(event["detail"])
    good, hung = analysed.Analysis.Images
    assert good.Analysis.Labels and not hung.Analysis.Labels
    (error,) = analysed.Analysis.Errors
    assert (error.Capability, error.Image) == ("image", hung.Key)
    assert error.Error.startswith("States.Timeout")


def test_a_hung_step_publishes_message_analysis_failed_before_the_limit(world):
    # download_media: moto's interpreter fails a Parallel whose branch timed out with
    # States.Runtime ("Custom Error Names MUST NOT begin with the prefix 'States.'"),
    # which AWS does not; a top-level task shows the same Retry and Catch.
    definition = scaled(world.definition)
    world.use(definition, "scaled")
    world.lambdas.hang["download_media"] = lambda payload: True

    started = time.monotonic()
    execution = world.run(message(ImageUrls=[]))

    assert execution["status"] == "FAILED"  # through PublishAnalysisFailed, not TIMED_OUT
    assert time.monotonic() - started < definition["TimeoutSeconds"]
    failed = [e for e in world.tapped() if e["detail-type"] == "MESSAGE_ANALYSIS_FAILED"]
    (event,) = failed
    assert event["detail"]["Reason"].startswith("States.Timeout")


# --- an execution that stops without publishing -------------------------------------------


def ending(execution: dict[str, Any], details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The state machine's log of the execution's ending, as its subscription filter
    delivers it to analysis_stopped (moto's interpreter writes no CloudWatch Logs)."""
    from tests.analysis.test_analysis_stopped import delivery, log_event

    kind = {"TIMED_OUT": "ExecutionTimedOut", "FAILED": "ExecutionFailed"}[execution["status"]]
    return delivery(log_event(kind, details, execution=execution["executionArn"]))


def test_the_first_step_records_which_message_its_execution_analyses(world):
    import boto3

    from chalicelib.analysis.executions import DynamoDbExecutions

    execution = world.run(message(ImageUrls=[]))

    assert execution["status"] == "SUCCEEDED", execution
    (download_input,) = [p for n, p in world.lambdas.calls if n == "download_media"]
    assert download_input == {
        "Message": message(ImageUrls=[]),
        "Execution": execution["executionArn"],
    }
    table = DynamoDbExecutions(boto3.client("dynamodb", region_name=REGION), TABLE)
    assert table.recall(execution["executionArn"]) == message(ImageUrls=[])


def test_a_timed_out_execution_reports_once_through_its_logged_ending(world):
    # The execution limit below the hung step's timeout: the execution itself times out.
    # 2 s, not 1: the first step must have run (it records which message the execution
    # analyses) before the limit, which a loaded CI machine did not always manage in 1 s.
    definition = scaled(world.definition, execution_timeout=2)
    (download,) = [
        state
        for state in definition["States"].values()
        if state["Type"] == "Task" and "download_media" in json.dumps(state)
    ]
    download["TimeoutSeconds"] = 2 * math.ceil(HANG_SECONDS)  # the hang outlasts the execution
    world.use(definition, "too-short")
    world.lambdas.hang["download_media"] = lambda payload: True

    execution = world.run(message(ImageUrls=[]))

    assert execution["status"] == "TIMED_OUT"
    assert world.tapped() == []  # the workflow itself published nothing
    logged = ending(execution)
    core_app().analysis_stopped(logged, None)
    core_app().analysis_stopped(logged, None)  # delivered at least once
    failed, skipped = sorted(
        world.tapped(), key=lambda e: e["detail-type"] != "MESSAGE_ANALYSIS_FAILED"
    )
    assert failed["detail-type"] == "MESSAGE_ANALYSIS_FAILED"
    assert failed["detail"]["MessageId"] == "2077393668393734144"
    assert failed["detail"]["Reason"] == "ExecutionTimedOut: the analysis execution timed out"
    assert skipped["detail-type"] == "REPLY_SKIPPED"


def test_a_failed_execution_that_already_reported_is_not_reported_again(world):
    world.lambdas.crash["analyse_text"] = lambda payload: True
    execution = world.run(message(ImageUrls=[]))
    assert execution["status"] == "FAILED"
    assert len(world.tapped()) == 2  # MESSAGE_ANALYSIS_FAILED and REPLY_SKIPPED

    # Whatever the log says the error was, the message's report is taken.
    for error in ("AnalysisFailed", "States.Runtime"):
        core_app().analysis_stopped(ending(execution, {"error": error, "cause": "x"}), None)

    assert world.tapped() == []


# --- one ending per message, whatever crashes around its publication ------------------------


ENDINGS = ("MESSAGE_ANALYSED", "MESSAGE_ANALYSIS_FAILED")


def endings_tapped(tapped: list[dict[str, Any]]) -> list[str]:
    return sorted(e["detail-type"] for e in tapped if e["detail-type"] in ENDINGS)


def test_a_publish_that_dies_after_publishing_is_not_followed_by_a_failure(world):
    # publish_analysis publishes and records MESSAGE_ANALYSED, then dies before answering,
    # on every try: the Retry runs it again, then the Catch routes to PublishAnalysisFailed.
    world.lambdas.crash_after["publish_analysis"] = lambda payload: True

    execution = world.run(message(ImageUrls=[]))

    assert execution["status"] == "FAILED"  # through the failure route...
    assert world.lambdas.names().count("publish_analysis") == 2
    assert "publish_analysis_failed" in world.lambdas.names()
    tapped = world.tapped()
    # ...which found the message ended: one MESSAGE_ANALYSED, no failure, no skip.
    assert [e["detail-type"] for e in tapped] == ["MESSAGE_ANALYSED"], tapped
    core_app().analysis_stopped(ending(execution, {"error": "AnalysisFailed"}), None)
    assert world.tapped() == []


def test_an_ending_published_but_not_recorded_is_published_again_never_changed(world, monkeypatch):
    # The bus took MESSAGE_ANALYSED, then the Lambda died before its record was written.
    from chalicelib import publishing

    publish, died = publishing.publish, []

    def publish_then_die(outgoing: Any) -> None:
        publish(outgoing)
        if not died:
            died.append(True)
            raise RuntimeError("died after the bus took the events")

    monkeypatch.setattr(publishing, "publish", publish_then_die)

    execution = world.run(message(ImageUrls=[]))

    assert execution["status"] == "SUCCEEDED", execution
    first, again = world.tapped()  # the retry published the claimed ending: a copy
    assert first["detail-type"] == again["detail-type"] == "MESSAGE_ANALYSED"
    assert first["detail"] == again["detail"]


def test_a_failure_published_then_a_crash_is_still_one_failure(world):
    world.lambdas.crash["analyse_text"] = lambda payload: True
    world.lambdas.crash_after["publish_analysis_failed"] = lambda payload: True

    execution = world.run(message(ImageUrls=[]))

    assert execution["status"] == "FAILED"
    assert world.lambdas.names().count("publish_analysis_failed") == 2  # tried, retried
    tapped = world.tapped()
    assert sorted(e["detail-type"] for e in tapped) == [
        "MESSAGE_ANALYSIS_FAILED",
        "REPLY_SKIPPED",
    ], tapped
    # Its log reports a Lambda error, not the workflow's own Fail: reported, and dropped.
    core_app().analysis_stopped(ending(execution, {"error": "RuntimeError"}), None)
    assert world.tapped() == []


def test_a_logged_timeout_after_the_message_was_analysed_publishes_no_failure(world):
    # Express reports an execution's ending only in its log: one that timed out after its
    # last step had published (its answer came too late) must not end the message again.
    execution = world.run(message(ImageUrls=[]))
    assert execution["status"] == "SUCCEEDED", execution
    assert endings_tapped(world.tapped()) == ["MESSAGE_ANALYSED"]

    logged = ending({**execution, "status": "TIMED_OUT"})
    core_app().analysis_stopped(logged, None)
    core_app().analysis_stopped(logged, None)

    assert world.tapped() == []
