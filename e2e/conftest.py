"""The deployed stack the end-to-end tests drive, once per run (`make e2e-aws`).

Not part of the unit suite (pytest's testpaths is tests/): `make e2e-aws` runs this folder.
One session: the stub X starts, LocalStack starts on loopback, the synthesized assembly
(MAGPIE_CDK_OUT, `make synth`'s infra/cdk.out by default) is deployed with the local AI
providers and X's URL pointed at the stub, and observers are attached from outside: a rule
copying every event of the bus into a queue, and a queue subscribed to the alert topic.
LocalStack is stopped at the end whatever happened; each phase's wall time is printed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from deploy import Account, deploy
from emulator import Emulator
from x_stub import XStub

ROOT = Path(__file__).resolve().parents[1]
BOT_USER_ID = "1876543210987654321"  # the bot of examples/webhooks
X_KEYS = {
    "ApiKey": "e2e-api-key",
    "ApiSecret": "e2e-api-secret-that-signs-webhooks",
    "AccessToken": "e2e-access-token",
    "AccessTokenSecret": "e2e-access-token-secret",
}
# The stack's parameters: the local models answer the AI ports (LocalStack emulates neither
# Comprehend, Rekognition nor Lex), and egress posts to the stub X.
LOCAL_PROVIDERS = {
    "TextProvider": "local",
    "ImageProvider": "local",
    "ConversationProvider": "local",
}
WAIT_SECONDS = 60.0  # per awaited event; a broken run still ends well inside the budget

PHASES: list[tuple[str, float]] = []


@contextmanager
def phase(name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        PHASES.append((name, time.monotonic() - started))


@pytest.fixture(autouse=True)
def _timed(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test's own wall time (the deployment it shares is timed once, above)."""
    with phase(request.node.name):
        yield


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if PHASES:
        terminalreporter.section("wall times")
        for name, seconds in PHASES:
            terminalreporter.write_line(f"{seconds:7.1f} s  {name}")


@dataclass
class Deployed:
    session: Any
    endpoint: str
    outputs: dict[str, str]
    x: XStub
    emulator: Emulator
    bus_queue: str
    alert_queue: str
    seen_events: list[dict[str, Any]] = field(default_factory=list)
    seen_alerts: list[str] = field(default_factory=list)

    def client(self, service: str) -> Any:
        # No host prefix: LocalStack answers on one host (StartSyncExecution's `sync-`).
        config = Config(inject_host_prefix=False, retries={"max_attempts": 2})
        return self.session.client(service, endpoint_url=self.endpoint, config=config)

    @property
    def webhook_path(self) -> str:
        """The stack's WebhookUrl output (https://<api>.execute-api.<region>.<suffix>/prod/
        twitter) on LocalStack's gateway, in its path form: no DNS needed."""
        url = urlsplit(self.outputs["WebhookUrl"])
        api_id = url.hostname.split(".", 1)[0] if url.hostname else ""
        return f"{self.endpoint}/_aws/execute-api/{api_id}{url.path}"

    def wait_for_event(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = WAIT_SECONDS
    ) -> dict[str, Any]:
        """The first event on the bus (seen so far or arriving) that `match`es."""
        return _wait(self.seen_events, self._drain_events, match, timeout, "event")

    def wait_for_alert(self, match: Callable[[str], bool], timeout: float = WAIT_SECONDS) -> str:
        return _wait(self.seen_alerts, self._drain_alerts, match, timeout, "alert")

    def _drain_events(self) -> None:
        for body in _receive(self.client("sqs"), self.bus_queue):
            self.seen_events.append(json.loads(body))

    def _drain_alerts(self) -> None:
        for body in _receive(self.client("sqs"), self.alert_queue):
            self.seen_alerts.append(json.loads(body)["Message"])


def _wait(seen: list[Any], drain: Callable[[], None], match: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        for item in seen:
            if match(item):
                return item
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no matching {what} within {timeout:.0f} s; seen: {seen!r}"[:4000]
            )
        drain()


def _receive(sqs: Any, queue_url: str) -> list[str]:
    answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    messages = answer.get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [m["Body"] for m in messages]


def _observe(deployed_session: Any, endpoint: str, outputs: dict[str, str]) -> tuple[str, str]:
    """A queue receiving every event of the bus, and one subscribed to the alert topic."""
    sqs = deployed_session.client("sqs", endpoint_url=endpoint)
    bus_queue = sqs.create_queue(QueueName="e2e-bus-events")["QueueUrl"]
    alert_queue = sqs.create_queue(QueueName="e2e-alerts")["QueueUrl"]

    def arn(url: str) -> str:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return attributes["Attributes"]["QueueArn"]

    events = deployed_session.client("events", endpoint_url=endpoint)
    bus = outputs["EventBusName"]
    events.put_rule(
        Name="e2e-every-event",
        EventBusName=bus,
        EventPattern=json.dumps({"source": [{"prefix": "magpie"}]}),
    )
    events.put_targets(
        Rule="e2e-every-event", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn(bus_queue)}]
    )
    sns = deployed_session.client("sns", endpoint_url=endpoint)
    sns.subscribe(TopicArn=outputs["AlertTopicArn"], Protocol="sqs", Endpoint=arn(alert_queue))
    return bus_queue, alert_queue


def _interpreters() -> tuple[Path, Path]:
    localstack = Path(
        os.environ.get("MAGPIE_LOCALSTACK_PYTHON", ROOT / ".venv-localstack/bin/python")
    )
    functions = Path(os.environ.get("MAGPIE_LAMBDA_PYTHON", ROOT / ".venv/bin/python"))
    for path, what in ((localstack, "LocalStack's"), (functions, "the functions'")):
        if not path.exists():
            pytest.fail(f"{what} interpreter {path} is missing: run `make e2e-aws`")
    return localstack, functions


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    cdk_out = Path(os.environ.get("MAGPIE_CDK_OUT", ROOT / "infra" / "cdk.out"))
    if not (cdk_out / "manifest.json").exists():
        pytest.fail(f"no cloud assembly in {cdk_out}: run `make synth` first")
    localstack, functions = _interpreters()
    workdir = Path(os.environ.get("MAGPIE_E2E_DIR") or tmp_path_factory.mktemp("localstack"))
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    x = XStub()
    x.start()
    emulator = Emulator(
        python=localstack,
        lambda_python=functions,
        dynalite=ROOT / "node_modules" / ".bin" / "dynalite",
        workdir=workdir,
    )
    account = Account()
    session = boto3.session.Session(
        region_name=account.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 (LocalStack's fixed test credentials)
    )
    try:
        with phase("LocalStack start"):
            emulator.start()
        with phase("deploy (bootstrap, assets, CREATE_COMPLETE)"):
            session.client("secretsmanager", endpoint_url=emulator.endpoint).create_secret(
                Name="TwitterSecret", SecretString=json.dumps(X_KEYS)
            )
            parameters = {
                "AlertEmail": "ops@example.com",
                "TwitterBotUserId": BOT_USER_ID,
                "XApiBaseUrl": x.url,
                **LOCAL_PROVIDERS,
            }
            outputs = deploy(session, emulator.endpoint, cdk_out, parameters, account)
            bus_queue, alert_queue = _observe(session, emulator.endpoint, outputs)
        yield Deployed(session, emulator.endpoint, outputs, x, emulator, bus_queue, alert_queue)
    finally:
        with phase("LocalStack stop"):
            emulator.stop()
        x.stop()
        # The functions' unzipped code (~340 MB a run); the logs stay for reading.
        shutil.rmtree(workdir / "tmp", ignore_errors=True)
        print(f"\nLocalStack's log and the functions' logs: {workdir}")
