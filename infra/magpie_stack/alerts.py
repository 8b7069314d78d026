"""The alert topic, and the rules that e-mail a human-readable text through it.

chalicelib/alerts.py says which events are alerts (ALERT_PATTERNS); each gets a rule on the
bus whose input transformer writes the e-mail (ALERT_MESSAGES). The CloudWatch alarms
(monitoring.py) publish to the same topic, and the core app's forward_alert relays every
message on it to an optional webhook.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs

from chalicelib.alerts import ALERT_PATTERNS

ALERT_TOPIC_NAME = "magpie-alerts"  # the core app's on_sns_message(topic=...) names it too
# Human-readable alert e-mails, one per ALERT_PATTERNS entry (input transformers).
D = "$.detail"
ALERT_MESSAGES = {
    "negative": (
        "Magpie: a NEGATIVE message from @{author} (negative score {score}).\n"
        "Text: {text}\nLink: https://x.com/{author}/status/{tweet}\nMessage id: {message}",
        {
            "author": f"{D}.Author",
            "score": f"{D}.Analysis.SentimentScore.Negative",
            "text": f"{D}.Text",
            "tweet": f"{D}.Twitter.TweetId",
            "message": f"{D}.MessageId",
        },
    ),
    "analysis_failed": (
        "Magpie: the analysis of a message from @{author} failed.\nReason: {reason}\n"
        "Text: {text}\nMessage id: {message}",
        {
            "author": f"{D}.Author",
            "reason": f"{D}.Reason",
            "text": f"{D}.Text",
            "message": f"{D}.MessageId",
        },
    ),
    "reply_failed": (
        "Magpie: a reply could not be posted to X.\nReason: {reason} (HTTP {status})\n"
        "Message id: {message}",
        {"reason": f"{D}.Reason", "status": f"{D}.StatusCode", "message": f"{D}.MessageId"},
    ),
}


def alerts_key(stack: cdk.Stack) -> kms.Key:
    """The key the alert topic and the webhook secret are encrypted with (alerts carry
    authors and texts; the webhook URL is a credential). A key of our own, since an
    AWS-managed key's policy cannot let CloudWatch alarms and EventBridge rules publish."""
    key = kms.Key(
        stack,
        "AlertsKey",
        description="Magpie: the alert topic and the alert webhook secret",
        enable_key_rotation=True,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AlarmsAndRulesPublishToTheAlertTopic",
            principals=[
                iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                iam.ServicePrincipal("events.amazonaws.com"),
            ],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],  # in a key policy, "*" is this key
        )
    )
    return key


def alert_webhook_secret(
    stack: cdk.Stack, *, url: cdk.CfnParameter, key: kms.IKey
) -> secretsmanager.Secret:
    """The optional webhook URL ({"Url": ...}, empty for none), kept out of every Lambda's
    environment: forward_alert reads it when it forwards (chalicelib/secrets.py)."""
    return secretsmanager.Secret(
        stack,
        "AlertWebhook",
        description="Magpie: the Slack-compatible webhook alerts are forwarded to",
        encryption_key=key,
        secret_object_value={"Url": cdk.SecretValue.cfn_parameter(url)},
    )


def alert_topic(
    stack: cdk.Stack, *, email: str, subscription_dead_letters: sqs.Queue, key: kms.IKey
) -> sns.Topic:
    """The topic, e-mailed to `email`, that the stack's alarms may publish to."""
    topic = sns.Topic(
        stack,
        "Alerts",
        topic_name=ALERT_TOPIC_NAME,
        display_name="Magpie alerts",
        enforce_ssl=True,
        master_key=key,
    )
    topic.add_subscription(subscriptions.EmailSubscription(email))
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarms",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "ArnLike": {
                    "aws:SourceArn": stack.format_arn(
                        service="cloudwatch",
                        resource="alarm",
                        resource_name="*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )
    # The core app's forward_alert subscription dead-letters here.
    subscription_dead_letters.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AlertSubscription",
            principals=[iam.ServicePrincipal("sns.amazonaws.com")],
            actions=["sqs:SendMessage"],
            resources=[subscription_dead_letters.queue_arn],
            conditions={"ArnEquals": {"aws:SourceArn": topic.topic_arn}},
        )
    )
    return topic


def alert_rules(
    stack: cdk.Stack, *, bus: events.IEventBus, topic: sns.ITopic, dead_letters: sqs.IQueue
) -> dict[str, events.Rule]:
    """One rule per ALERT_PATTERNS entry: the event, as an e-mail, onto the topic."""
    return {
        key: events.Rule(
            stack,
            "Alert" + "".join(p.title() for p in key.split("_")),
            event_bus=bus,
            description=f"Alert e-mail: {key.replace('_', ' ')}",
            event_pattern=events.EventPattern(
                source=pattern["source"],
                detail_type=pattern["detail-type"],
                detail=pattern.get("detail"),
            ),
            targets=[
                targets.SnsTopic(
                    topic,
                    message=events.RuleTargetInput.from_text(alert_text(key)),
                    dead_letter_queue=dead_letters,
                    retry_attempts=8,
                    max_event_age=cdk.Duration.hours(1),
                )
            ],
        )
        for key, pattern in ALERT_PATTERNS.items()
    }


def alert_text(key: str) -> str:
    """The e-mail's text for one ALERT_MESSAGES entry, its fields taken from the event."""
    template, fields = ALERT_MESSAGES[key]
    return template.format(
        **{name: events.EventField.from_path(path) for name, path in fields.items()}
    )
