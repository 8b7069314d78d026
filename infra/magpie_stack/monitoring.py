"""The alarms (each to the alert topic) and the `magpie` dashboard."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

from magpie_stack.bus import DETAIL_TYPES, EventSpine

PERIOD = cdk.Duration.minutes(5)


def alarms_and_dashboard(
    stack: cdk.Stack,
    *,
    machine: sfn.StateMachine,
    spine: EventSpine,
    send_tweet_name: str,
    dead_letter_queues: Mapping[str, sqs.IQueue],
    topic: sns.ITopic,
) -> dict[str, cloudwatch.Alarm]:
    """An alarm on each kind of failure and on each dead-letter queue (any one is worth a
    look), all sending to `topic`; and the dashboard. Returns the alarms by name."""
    analysis_failures = _analysis_failures(machine)
    egress_failures = _egress_failures(spine, send_tweet_name)
    alarms = {
        "AnalysisFailures": _at_least_one(
            analysis_failures,
            stack,
            "AnalysisFailuresAlarm",
            "Analysis executions that failed or timed out",
        ),
        "EgressFailures": _at_least_one(
            egress_failures,
            stack,
            "EgressFailuresAlarm",
            "Replies that failed (TWEET_FAILED) or egress errors",
        ),
    }
    for name, queue in dead_letter_queues.items():
        alarms[name] = _at_least_one(
            queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            stack,
            f"{name}Alarm",
            f"Messages waiting in the {name} queue",
        )
    alert = cw_actions.SnsAction(topic)
    for alarm in alarms.values():
        alarm.add_alarm_action(alert)
    _dashboard(
        stack,
        spine=spine,
        machine=machine,
        failures=[analysis_failures, egress_failures],
        dead_letter_queues=list(dead_letter_queues.values()),
        alarms=list(alarms.values()),
    )
    return alarms


def _analysis_failures(machine: sfn.StateMachine) -> cloudwatch.MathExpression:
    return cloudwatch.MathExpression(
        label="analysis failures",
        expression="failed + timedout",
        using_metrics={
            "failed": machine.metric_failed(period=PERIOD),
            "timedout": machine.metric_timed_out(period=PERIOD),
        },
        period=PERIOD,
    )


def _egress_failures(spine: EventSpine, send_tweet_name: str) -> cloudwatch.MathExpression:
    return cloudwatch.MathExpression(
        label="egress failures",
        expression="tweetfailed + errors",
        using_metrics={
            "tweetfailed": spine.metric("TWEET_FAILED"),
            "errors": cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions_map={"FunctionName": send_tweet_name},
                statistic="Sum",
                period=PERIOD,
            ),
        },
        period=PERIOD,
    )


def _at_least_one(
    metric: cloudwatch.Metric | cloudwatch.MathExpression,
    stack: cdk.Stack,
    construct_id: str,
    description: str,
) -> cloudwatch.Alarm:
    """An alarm as soon as one period counts one or more; no data is no alarm."""
    return metric.create_alarm(
        stack,
        construct_id,
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description=description,
    )


def _dashboard(
    stack: cdk.Stack,
    *,
    spine: EventSpine,
    machine: sfn.StateMachine,
    failures: list[cloudwatch.MathExpression],
    dead_letter_queues: list[sqs.IQueue],
    alarms: list[cloudwatch.Alarm],
) -> cloudwatch.Dashboard:
    twitter = [d for d in DETAIL_TYPES if d.startswith("TWITTER_")]
    pipeline = [d for d in DETAIL_TYPES if not d.startswith("TWITTER_")]
    dashboard = cloudwatch.Dashboard(stack, "Dashboard", dashboard_name="magpie")
    dashboard.add_widgets(
        cloudwatch.GraphWidget(
            title="Messages through the pipeline",
            width=12,
            left=[spine.metric(d) for d in pipeline],
        ),
        cloudwatch.GraphWidget(
            title="X activity received", width=12, left=[spine.metric(d) for d in twitter]
        ),
    )
    dashboard.add_widgets(
        cloudwatch.GraphWidget(
            title="Analysis workflow",
            width=8,
            left=[
                machine.metric_started(),
                machine.metric_succeeded(),
                machine.metric_failed(),
                machine.metric_timed_out(),
            ],
        ),
        cloudwatch.GraphWidget(title="Failures", width=8, left=failures),
        cloudwatch.GraphWidget(
            title="Dead letters",
            width=8,
            left=[q.metric_approximate_number_of_messages_visible() for q in dead_letter_queues],
        ),
    )
    dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", width=24, alarms=alarms))
    return dashboard
