"""Shared fixtures: a clean local backend per test, and AWS through moto."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "examples" / "webhooks"
BOT_ID = "1876543210987654321"
SECRET = "test-consumer-secret"

# Never let botocore probe the instance metadata address, and never use real credentials.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(_name, None)


# CI runs property tests derandomized (same examples every run, no flaky landing) and without
# per-example deadlines (the 2-core machine is shared); locally each run explores anew.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def load_sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture
def local_env(tmp_path, monkeypatch):
    """The local backend under a fresh MAGPIE_HOME, with a known consumer secret."""
    from chalicelib import backend

    home = tmp_path / "home"
    monkeypatch.setenv("MAGPIE_BACKEND", "local")
    monkeypatch.setenv("MAGPIE_HOME", str(home))
    monkeypatch.setenv("TWITTER_BOT_USER_ID", BOT_ID)
    monkeypatch.setenv("TWITTER_API_SECRET", SECRET)
    monkeypatch.delenv("MAGPIE_MEDIA_MIRROR", raising=False)
    backend.reset()
    yield home
    backend.reset()


def create_idempotency_table(name: str) -> None:
    """The stack's idempotency table in moto: Powertools' key name, on demand."""
    import boto3

    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def aws_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
