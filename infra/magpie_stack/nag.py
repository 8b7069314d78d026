"""The scanners' findings the stack accepts, each with its reason: cdk-nag (AwsSolutions)
and CDK template-validation acknowledgments (`suppress`), and checkov's skips
(`checkov_skips`, written into each resource's Metadata, where checkov reads them).

Every finding the stack accepts is listed here and nowhere else, next to why. Ids that name
a resource are built from the resource's logical id, so a rename cannot silently widen one;
checkov skips are per resource, never for a whole check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from constructs import IConstruct

from magpie_stack.analysis import ANALYSIS_STEPS

if TYPE_CHECKING:
    from magpie_stack.lake import DataLake
    from magpie_stack.parts import StackParts

NAG = "AwsSolutions::AwsSolutions-"


def ack(construct: IConstruct, rule: str, reason: str) -> None:
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def arn_of(construct: IConstruct) -> str:
    resource = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
    return f"<{cdk.Stack.of(construct).get_logical_id(resource)}.Arn>"  # type: ignore[arg-type]


def suppress(stack: StackParts) -> None:
    core, responders = stack.apps["core"], stack.apps["responders"]
    egress = stack.apps["egress"]
    media = arn_of(stack.media)

    for queue in (stack.rule_dead_letters, stack.lambda_dead_letters):
        ack(
            queue,
            NAG + "SQS3",
            "This queue is itself a dead-letter queue; its depth raises "
            "an alarm to the alert topic.",
        )

    if stack.profile == "full":  # lite calls neither service (lite.py)
        ack(
            core.roles["analyse_text"],
            NAG + "IAM5[Resource::*]",
            "Comprehend's DetectDominantLanguage, DetectSentiment, BatchDetectSentiment, "
            "DetectEntities and DetectKeyPhrases take text, not a resource: they support no "
            "resource-level permissions (Service Authorization Reference, Amazon Comprehend).",
        )
        ack(
            core.roles["analyse_image"],
            NAG + "IAM5[Resource::*]",
            "Rekognition's DetectLabels, DetectText, DetectModerationLabels and "
            "RecognizeCelebrities analyse an image, not a resource, and support no "
            "resource-level permissions; SearchFacesByImage is scoped to the configured "
            "collection.",
        )

    media_reason = (
        "Object-level access to the media/ prefix of the media bucket (one key per "
        "message and image, expiring after a day); no other prefix or bucket."
    )
    annotated_reason = (
        "Object-level access to the annotated/ prefix of the media bucket "
        "(annotated photos for replies); no other prefix or bucket."
    )
    for role in (
        core.roles["download_media"],
        core.roles["analyse_image"],
        responders.roles["image_responder"],
    ):
        ack(role, NAG + f"IAM5[Resource::{media}/media/*]", media_reason)
    for role in (responders.roles["image_responder"], egress.roles["send_tweet"]):
        ack(role, NAG + f"IAM5[Resource::{media}/annotated/*]", annotated_reason)

    machine = stack.analysis.state_machine
    ack(
        machine.role,
        NAG + "IAM5[Resource::*]",
        "CDK's grant for Step Functions logging: logs:CreateLogDelivery, GetLogDelivery, "
        "UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, "
        "DescribeResourcePolicies and DescribeLogGroups support no resource-level "
        "permissions (Step Functions developer guide, 'IAM policies for logging').",
    )
    for name in ANALYSIS_STEPS:
        ack(
            machine.role,
            NAG + f"IAM5[Resource::{arn_of(core.function_resource(name))}:*]",
            "CDK's lambda:InvokeFunction grant also covers the function's versions and "
            "aliases (<arn>:*); it is scoped to the one analysis step function.",
        )
    ack(
        machine,
        NAG + "SF1",
        "Logged at level ERROR, not ALL: a failing execution still logs its errors and, with "
        "execution data, the input of its Fail state (the message and the failure), which "
        "is what debugging needs; successes log nothing. Level ALL with execution data made "
        "CloudWatch Logs about $12 of the $16 per million messages.",
    )
    ack(
        machine,
        NAG + "SF2",
        "No X-Ray: the Express workflow logs every failure (level ERROR, with execution "
        "data), and tracing would need a wildcard xray:* grant.",
    )

    ack(
        stack.webhook_secret,
        NAG + "SMG4",
        "The alert webhook's URL is issued by the chat service (e.g. a Slack incoming "
        "webhook); no Lambda can rotate it. Replace it by updating the AlertWebhookUrl "
        "parameter.",
    )
    ack(
        stack.node.find_child("ApiGatewayLogsRole"),
        NAG + "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AmazonAPIGatewayPushToCloudWatchLogs]",
        "API Gateway's own role for writing logs to CloudWatch, the managed policy AWS "
        "documents for it; only API Gateway can assume it.",
    )
    ack(
        stack.lake.node.find_child("FirehoseRole"),
        NAG + f"IAM5[Resource::{arn_of(stack.lake.bucket)}/*]",
        "Firehose writes objects under the date prefixes it generates "
        "(year=/month=/day=) and errors/; it needs object access across the lake bucket.",
    )


# --- checkov ---------------------------------------------------------------------------

# What no function of the stack does, whichever it is.
CHECKOV_EVERY_FUNCTION = {
    "CKV_AWS_117": "No function reaches anything inside a VPC: each calls AWS APIs or X over "
    "the internet. A VPC would add NAT gateways or an endpoint per service, and their cost, "
    "and isolate nothing.",
    "CKV_AWS_173": "The variables hold resource names, ARNs and switches, never a secret (the "
    "X keys and the alert webhook URL are read from Secrets Manager at run time); Lambda "
    "encrypts them at rest with its own key.",
}
# Only ingress, the door, has a concurrency limit of its own (wiring.webhook_limits).
CHECKOV_UNRESERVED = (
    "CKV_AWS_115",
    "Runs for events ingress admitted: the webhook stage's throttling and ingress's reserved "
    "concurrency bound the inflow, so this function's scale follows it. Reserving more "
    "concurrency per function would only take it from the account's shared pool.",
)
# Functions invoked synchronously: a Lambda dead-letter queue only ever receives failed
# asynchronous invocations.
SYNCHRONOUS = {
    "core": (*ANALYSIS_STEPS, "lex_fulfilment"),
    "ingress": ("api_handler",),
}
CHECKOV_SYNCHRONOUS = (
    "CKV_AWS_116",
    "Invoked synchronously (by the analysis state machine, which retries and catches; by API "
    "Gateway, whose caller X redelivers; or by Lex): a dead-letter queue only receives failed "
    "asynchronous invocations and would stay empty.",
)
CHECKOV_BY_TYPE = {
    "AWS::Logs::LogGroup": (
        "CKV_AWS_158",
        "CloudWatch Logs encrypts every log group at rest. The logs hold no secret; a key of "
        "our own would protect them from no reader this account's IAM does not already stop.",
    ),
}
CHECKOV_WEBHOOK_API = {
    "CKV_AWS_120": "Nothing to cache: every POST is a new delivery and every CRC GET answers "
    "a fresh crc_token. A stage cache would be billed by the hour for no hit.",
    "CKV_AWS_73": "No X-Ray in this stack (as the state machine): the access log, ingress's "
    "logs and the bus's event log follow a delivery, and tracing every webhook call would "
    "be paid for on the busiest path.",
}
CHECKOV_QUEUE = (
    "CKV_AWS_27",
    "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), which this check "
    "does not recognise; SSE-SQS needs no key policy for EventBridge, SNS and Lambda to "
    "send dead letters.",
)


def skip(construct: IConstruct, check: str, reason: str) -> None:
    """One checkov skip, in the Metadata of the construct's CloudFormation resource."""
    resource = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
    assert isinstance(resource, cdk.CfnResource), construct
    found = resource.get_metadata("checkov") or {}
    resource.add_metadata(
        "checkov", {"skip": [*found.get("skip", []), {"id": check, "comment": reason}]}
    )


def checkov_skips(stack: StackParts) -> None:
    for key, app in stack.apps.items():
        for name in app.function_names:
            function = app.function_resource(name)
            for check, reason in CHECKOV_EVERY_FUNCTION.items():
                skip(function, check, reason)
            if (key, name) != ("ingress", "api_handler"):
                skip(function, *CHECKOV_UNRESERVED)
            if name in SYNCHRONOUS.get(key, ()):
                skip(function, *CHECKOV_SYNCHRONOUS)
    for construct in stack.node.find_all():
        if (
            isinstance(construct, cdk.CfnResource)
            and construct.cfn_resource_type in CHECKOV_BY_TYPE
        ):
            skip(construct, *CHECKOV_BY_TYPE[construct.cfn_resource_type])
    rest_api = stack.apps["ingress"].chalice.get_resource("RestAPI")
    for check, reason in CHECKOV_WEBHOOK_API.items():
        skip(rest_api, check, reason)
    for queue in (stack.rule_dead_letters, stack.lambda_dead_letters):
        skip(queue, *CHECKOV_QUEUE)
    skip(
        stack.idempotency,
        "CKV_AWS_119",
        "Encrypted with DynamoDB's AWS-managed key; an item is a hashed key, a status and an "
        "expiry, never a message or a secret.",
    )
    _unversioned_buckets(stack, stack.lake)


def _unversioned_buckets(stack: StackParts, lake: DataLake) -> None:
    """CKV_AWS_21: every object these buckets hold is written once and can be made again."""
    reasons = {
        stack.media: "Downloaded media, expiring after a day; each object is written once "
        "per message and image and can be fetched again.",
        lake.bucket: "Firehose writes each object once and never overwrites it; the events "
        "are also kept in the bus archive, from which the lake can be replayed.",
        lake.node.find_child("AthenaResults"): "Athena query results, written once per "
        "query and re-made by running the query again.",
        stack.access_logs: "Server access logs, delivered once and expiring after 90 days; "
        "nothing overwrites them.",
    }
    for bucket, reason in reasons.items():
        skip(bucket, "CKV_AWS_21", reason)
    skip(
        stack.access_logs,
        "CKV_AWS_18",
        "The bucket other buckets log their access to; logging its own access into itself "
        "would loop.",
    )
