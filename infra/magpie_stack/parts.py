"""The stack's shared pieces, as the modules that wire and check them see them.

`wiring.py` (each function's environment and permissions) and `nag.py` (the scanners'
accepted findings) work on the pieces `MagpieStack` (stack.py) built, and stack.py calls
them: typed against this Protocol instead of the stack's class, they need not import
stack.py back. MagpieStack is its one implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_secretsmanager as secretsmanager
    from aws_cdk import aws_sns as sns
    from aws_cdk import aws_sqs as sqs
    from constructs import Node

    from magpie_stack.analysis import AnalysisWorkflow
    from magpie_stack.bus import EventSpine
    from magpie_stack.chalice_apps import ChaliceApp
    from magpie_stack.lake import DataLake
    from magpie_stack.parameters import Parameters


class StackParts(Protocol):
    """A `cdk.Stack` holding Magpie's shared resources (attributes set in MagpieStack's
    constructor, in this order; `analysis` and `lake` come after the wiring)."""

    profile: str  # full | lite (lite.py)
    params: Parameters
    rule_dead_letters: sqs.Queue
    lambda_dead_letters: sqs.Queue
    access_logs: s3.Bucket
    media: s3.Bucket
    faces: s3.Bucket | None
    idempotency: dynamodb.Table
    twitter_secret: secretsmanager.ISecret
    spine: EventSpine
    alerts_key: kms.Key
    topic: sns.Topic
    webhook_secret: secretsmanager.Secret
    apps: dict[str, ChaliceApp]
    analysis: AnalysisWorkflow
    lake: DataLake

    @property
    def node(self) -> Node: ...

    def format_arn(self, **parts: Any) -> str: ...
