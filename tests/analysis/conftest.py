"""Fixtures for the AWS analysis adapters: a botocore client for the module's SERVICE, its
Stubber (every queued response must be used), and a record of the retry sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber


@pytest.fixture
def client(request: pytest.FixtureRequest) -> Any:
    return boto3.client(
        request.module.SERVICE,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def sleeps() -> list[float]:
    return []
