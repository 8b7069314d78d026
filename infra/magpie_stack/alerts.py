"""The alert topic, its key and the webhook secret.

chalicelib/alerts.py says which events are alerts (ALERT_PATTERNS); the core app's alert
functions subscribe to them on the bus (app.py; wiring.py moves their rules there and lets
them publish) and publish each alert once per message, as text for e-mail and as JSON for
every other subscriber (chalicelib/alert_sinks.py). The CloudWatch alarms (monitoring.py)
publish to the same topic, and the core app's forward_alert relays every message on it to
an optional webhook.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs

ALERT_TOPIC_NAME = "magpie-alerts"  # the core app's on_sns_message(topic=...) names it too


def alerts_key(stack: cdk.Stack) -> kms.Key:
    """The key the alert topic and the webhook secret are encrypted with (alerts carry
    authors and texts; the webhook URL is a credential). A key of our own, since an
    AWS-managed key's policy cannot let CloudWatch alarms publish."""
    key = kms.Key(
        stack,
        "AlertsKey",
        description="Magpie: the alert topic and the alert webhook secret",
        enable_key_rotation=True,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AlarmsPublishToTheAlertTopic",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
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
