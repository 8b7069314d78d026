"""The event spine: the `magpie` bus, who may put events on it, its archive, log and metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
import jsii
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from chalicelib import events as contract

BUS_NAME = "magpie"
METRIC_NAMESPACE = "Magpie"
# Below egress's REPLY_MEMORY_DAYS (400): a replay from the archive never answers twice.
ARCHIVE_RETENTION_DAYS = 365

# Every detail-type on the bus (chalicelib/events.py), one metric each.
DETAIL_TYPES: tuple[str, ...] = (
    *contract.TWITTER_DETAIL_TYPES,
    *(model.DETAIL_TYPE for model in contract.MODELS),
)


@jsii.implements(events.IRuleTarget)
class ArnTarget:
    """A rule target given by ARN, with its dead-letter queue and retry policy.

    Used where CDK's own target would add more than the stack needs: its CloudWatch Logs
    target installs a custom-resource Lambda to write the log group's resource policy (the
    stack writes an AWS::Logs::ResourcePolicy instead), and its Firehose target needs an L2
    stream (the lake's stream is an L1 for its AppendDelimiterToRecord processor)."""

    def __init__(
        self,
        arn: str,
        *,
        dead_letter_queue: sqs.IQueue,
        role: iam.IRole | None = None,
        retry_attempts: int = 8,
        max_event_age_seconds: int = 3600,
    ) -> None:
        self.arn = arn
        self.role = role
        self.dead_letter_queue = dead_letter_queue
        self.retry_attempts = retry_attempts
        self.max_event_age_seconds = max_event_age_seconds

    def bind(self, rule: events.IRule, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(
            arn=self.arn,
            role=self.role,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(
                arn=self.dead_letter_queue.queue_arn
            ),
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_retry_attempts=self.retry_attempts,
                maximum_event_age_in_seconds=self.max_event_age_seconds,
            ),
        )


class EventSpine(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        log_retention: logs.RetentionDays,
        dead_letters: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.bus = events.EventBus(self, "Bus", event_bus_name=BUS_NAME)
        self.all_events = events.EventPattern(account=[stack.account])
        self.archive = self.bus.archive(
            "Archive",
            archive_name=f"{BUS_NAME}-archive",
            description="Every Magpie event, for replay",
            event_pattern=self.all_events,
            retention=cdk.Duration.days(ARCHIVE_RETENTION_DAYS),
        )

        # Every event into one log group: debugging, and a metric per detail-type.
        self.log_group = logs.LogGroup(
            self, "EventLog", log_group_name=f"/aws/events/{BUS_NAME}", retention=log_retention
        )
        self.log_rule = events.Rule(
            self,
            "ToLog",
            event_bus=self.bus,
            description="Every event on the Magpie bus, into CloudWatch Logs",
            event_pattern=self.all_events,
            targets=[ArnTarget(self.log_group.log_group_arn, dead_letter_queue=dead_letters)],
        )
        self.log_policy = logs.ResourcePolicy(
            self,
            "EventLogPolicy",
            policy_statements=[
                iam.PolicyStatement(
                    sid="EventBridgeWritesTheEventLog",
                    principals=[
                        iam.ServicePrincipal("events.amazonaws.com"),
                        iam.ServicePrincipal("delivery.logs.amazonaws.com"),
                    ],
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.log_group.log_group_arn],
                )
            ],
        )
        self.log_rule.node.add_dependency(self.log_policy)
        self.metric_filters = {
            detail_type: logs.MetricFilter(
                self,
                f"Count{detail_type.title().replace('_', '')}",
                log_group=self.log_group,
                metric_namespace=METRIC_NAMESPACE,
                metric_name=detail_type,
                filter_pattern=logs.FilterPattern.string_value("$.detail-type", "=", detail_type),
                metric_value="1",
            )
            for detail_type in DETAIL_TYPES
        }

    def metric(self, detail_type: str, period: cdk.Duration | None = None) -> object:
        return self.metric_filters[detail_type].metric(
            statistic="Sum", period=period or cdk.Duration.minutes(5), label=detail_type
        )

    def restrict_publishers(self, publishers: Mapping[str, Sequence[iam.IRole]]) -> None:
        """Only these roles may put events, each only with its own `source`.

        Same-account principals need no Allow here (their identity policies grant
        PutEvents); these Denies stop every other principal in the account, and stop a
        Magpie role from speaking for another part (e.g. only the responders can make the
        bot tweet). Each role's own policy repeats the source condition."""
        every_role = [role.role_arn for roles in publishers.values() for role in roles]
        # The bus's own ARN, spelled out: a Ref from the bus's policy to itself is a cycle.
        bus_arn = cdk.Stack.of(self).format_arn(
            service="events", resource="event-bus", resource_name=BUS_NAME
        )
        statements = [
            iam.PolicyStatement(
                sid="OnlyMagpieRolesPutEvents",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[bus_arn],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": every_role}},
            )
        ]
        for source, roles in publishers.items():
            statements.append(
                iam.PolicyStatement(
                    sid="OnlyOwnSource" + source.split(".")[-1].title(),
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["events:PutEvents"],
                    resources=[bus_arn],
                    conditions={
                        "ArnEquals": {"aws:PrincipalArn": [r.role_arn for r in roles]},
                        "StringNotEquals": {"events:source": source},
                    },
                )
            )
        # One policy document on the bus itself (AWS::Events::EventBus Policy).
        bus = self.bus.node.default_child
        bus.add_property_override(  # type: ignore[union-attr]
            "Policy", iam.PolicyDocument(statements=statements)
        )

    def grant_put(self, role: iam.IRole, source: str) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                conditions={"StringEquals": {"events:source": source}},
            )
        )
