"""The named LocalStack workarounds: what each computes (the patches apply these)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from magpie_localstack.patches import (
    dynalite_command,
    firehose_stream_name,
    gateway_interface,
    is_arn_attribute,
    numbers_as_text,
    placeholder_arn,
)

DYNALITE = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "dynalite"


def test_a_firehose_stream_without_a_name_gets_the_generated_one() -> None:
    state = {"DeliveryStreamType": "DirectPut"}

    firehose_stream_name(state, lambda: "MagpieStack-LakeDelivery-1a2b3c4d")

    assert state["DeliveryStreamName"] == "MagpieStack-LakeDelivery-1a2b3c4d"


def test_a_named_firehose_stream_keeps_its_name() -> None:
    state = {"DeliveryStreamName": "mine"}

    firehose_stream_name(state, lambda: pytest.fail("generated a name for a named stream"))

    assert state["DeliveryStreamName"] == "mine"


@pytest.mark.parametrize(
    ("resource_type", "logical_id", "arn"),
    [
        ("AWS::Lex::BotAlias", "LexAlias", "arn:aws:lex:eu-west-1:000000000000:botalias/LexAlias"),
        ("AWS::Lex::Bot", "LexBot1", "arn:aws:lex:eu-west-1:000000000000:bot/LexBot1"),
        (
            "AWS::Athena::WorkGroup",
            "LakeWorkGroup",
            "arn:aws:athena:eu-west-1:000000000000:workgroup/LakeWorkGroup",
        ),
        ("AWS::Glue::Table", "T", "arn:aws:glue:eu-west-1:000000000000:table/T"),
    ],
)
def test_a_placeholders_arn_is_well_formed_and_names_it(resource_type, logical_id, arn) -> None:
    made = placeholder_arn(
        resource_type, logical_id, partition="aws", region="eu-west-1", account="000000000000"
    )

    assert made == arn
    assert len(made.split(":")) == 6  # what IAM checks a Resource for


def test_only_arn_attributes_are_given_an_arn() -> None:
    assert is_arn_attribute("Arn") and is_arn_attribute("BotAliasArn")
    assert not is_arn_attribute("Id") and not is_arn_attribute("BotAliasId")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_dynalite_started_as_the_patch_starts_it_answers_dynamodb() -> None:
    if not DYNALITE.exists():
        pytest.fail("dynalite is missing: run `npm ci` at the repository root")
    assert shutil.which("node"), "dynalite needs node"
    port = _free_port()
    server = subprocess.Popen(dynalite_command(str(DYNALITE), port), stdout=subprocess.DEVNULL)
    try:
        client = boto3.client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                client.list_tables()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        client.create_table(
            TableName="idempotency",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.get_waiter("table_exists").wait(
            TableName="idempotency", WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
        )
        client.put_item(TableName="idempotency", Item={"id": {"S": "m1"}})
        item = client.get_item(TableName="idempotency", Key={"id": {"S": "m1"}})["Item"]
        status = client.describe_table(TableName="idempotency")["Table"]["TableStatus"]
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert item == {"id": {"S": "m1"}}
    assert status == "ACTIVE"


def test_numbers_in_a_text_template_become_their_json_text() -> None:
    replacements = {"score": 0.9731, "count": 3, "flag": True, "author": "ana", "none": ""}

    made = numbers_as_text("Negative score <score> from <author>", replacements)

    assert made == {"score": "0.9731", "count": "3", "flag": True, "author": "ana", "none": ""}


def test_a_json_template_keeps_its_numbers() -> None:
    replacements = {"score": 0.5}

    assert numbers_as_text('{"score": <score>}', replacements) == {"score": 0.5}


def test_the_gateway_is_bound_to_the_host_its_port_was_named_with() -> None:
    listen = [("127.0.0.1", 4566), ("0.0.0.0", 443)]

    assert gateway_interface(listen, 4566) == "127.0.0.1"
    assert gateway_interface(listen, 443) == "0.0.0.0"
    assert gateway_interface(listen, 8080) == ""  # not ours: as twisted would bind it
