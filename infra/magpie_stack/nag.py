"""cdk-nag (AwsSolutions) and CDK template-validation acknowledgments, each with its reason.

Every finding the stack accepts is listed here and nowhere else, next to why. Ids that name
a resource are built from the resource's logical id, so a rename cannot silently widen one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from constructs import IConstruct

from magpie_stack.analysis import ANALYSIS_STEPS

if TYPE_CHECKING:
    from magpie_stack.stack import MagpieStack

NAG = "AwsSolutions::AwsSolutions-"


def ack(construct: IConstruct, rule: str, reason: str) -> None:
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def arn_of(construct: IConstruct) -> str:
    resource = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
    return f"<{cdk.Stack.of(construct).get_logical_id(resource)}.Arn>"  # type: ignore[arg-type]


def suppress(stack: MagpieStack) -> None:
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
        stack.lake.node.find_child("FirehoseRole"),
        NAG + f"IAM5[Resource::{arn_of(stack.lake.bucket)}/*]",
        "Firehose writes objects under the date prefixes it generates "
        "(year=/month=/day=) and errors/; it needs object access across the lake bucket.",
    )
