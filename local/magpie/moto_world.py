"""The AWS resources Magpie needs, created in an account that moto fakes.

One place for tests and benchmarks that run Magpie's AWS code path without AWS: the
TwitterSecret, the idempotency table (Powertools' key schema), the custom bus, and an SQS
"tap" rule that shows what was published (moto delivers rules to SQS, not to Lambda).
Call inside `moto.mock_aws()`; never deployed.
"""

from __future__ import annotations

import json
from typing import Any


def create_twitter_secret(api_secret: str, name: str = "TwitterSecret") -> None:
    import boto3

    value = {"ApiKey": "k", "ApiSecret": api_secret, "AccessToken": "t", "AccessTokenSecret": "ts"}
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(value))


def create_idempotency_table(name: str = "magpie-idempotency") -> None:
    """Keyed on `id`, as Powertools' DynamoDB persistence layer (and the guards) expect."""
    import boto3

    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


class Tap:
    """An SQS queue fed by a rule on the bus: drain() returns the envelopes published."""

    def __init__(self, sqs: Any, url: str, arn: str) -> None:
        self.sqs, self.url, self.arn = sqs, url, arn

    def drain(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
            messages = batch.get("Messages", [])
            if not messages:
                return out
            for message in messages:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


def create_queue(name: str) -> Tap:
    import boto3

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return Tap(sqs, url, arn)


def create_bus(name: str = "magpie", *, tap: str | None = "tap") -> Tap | None:
    """The custom bus, with (by default) a tap rule on every Magpie source."""
    import boto3

    events = boto3.client("events")
    events.create_event_bus(Name=name)
    if tap is None:
        return None
    queue = create_queue(tap)
    events.put_rule(
        Name=tap, EventBusName=name, EventPattern=json.dumps({"source": [{"prefix": "magpie."}]})
    )
    events.put_targets(Rule=tap, EventBusName=name, Targets=[{"Id": "sqs", "Arn": queue.arn}])
    return queue
