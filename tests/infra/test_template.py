"""Assertions on the synthesized stack (one `cdk synth --strict` per session, conftest.py).

Where a check concerns what CloudFormation will deploy (rules, permissions, functions), it
reads the template after the SAM transform (`synth.expanded`), since chalice.cdk emits SAM.
Checks taking `each_synth` hold for both profiles (`full` and `lite`); the lite profile's
own checks are in test_lite.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from chalicelib import events
from chalicelib.alerts import ALERT_PATTERNS
from chalicelib.config import Settings
from chalicelib.lake_routes import MAGPIE_EVENTS_PATTERN, RAW_X_PATTERN, RAW_X_PREFIX
from chalicelib.responders.bot_definition import intents_for_locale
from tests.infra.expected import EXPECTED_ENVIRONMENT, EXPECTED_LITE_ENVIRONMENT

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ALL_DETAIL_TYPES = {*events.TWITTER_DETAIL_TYPES, *(m.DETAIL_TYPE for m in events.MODELS)}


# --- helpers -------------------------------------------------------------------------------


def ref(value: Any) -> str | None:
    """The logical id a Ref or Fn::GetAtt points at (None for anything else)."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


def output_ref(template: dict[str, Any], name: str) -> str:
    return ref(template["Outputs"][name]["Value"])


def handler_of(properties: dict[str, Any]) -> str:
    """`app.<function>`: a zip function's Handler, or an image function's command."""
    if properties.get("PackageType") == "Image":
        (command,) = properties["ImageConfig"]["Command"]
        return command
    return properties["Handler"]


def functions(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Chalice function name -> (logical id, resource), after the SAM transform."""
    found = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        handler = handler_of(resource["Properties"])
        name = "api_handler" if handler == "app.app" else handler.split(".", 1)[1]
        found[name] = (logical_id, resource)
    return found


def statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, dict) and "Fn::Join" in document:
        return []  # rendered elsewhere
    found = document.get("Statement", [])
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and any(
            ref(r) == role_id for r in resource["Properties"].get("Roles", [])
        ):
            found.extend(statements(resource["Properties"]["PolicyDocument"]))
    role = template["Resources"][role_id]["Properties"]
    for policy in role.get("Policies", []):
        found.extend(statements(policy["PolicyDocument"]))
    return found


def grants(template: dict[str, Any], role_id: str, action: str, target_id: str) -> bool:
    for statement in role_statements(template, role_id):
        if statement.get("Effect", "Allow") != "Allow":
            continue
        if action not in as_list(statement["Action"]):
            continue
        if any(target_id in json.dumps(r) for r in as_list(statement["Resource"])):
            return True
    return False


# --- the synth itself ----------------------------------------------------------------------


def test_synth_is_strict_offline_and_reports_its_time(synth):
    assert synth.template["Transform"] == "AWS::Serverless-2016-10-31"
    print(f"\ncdk synth --strict took {synth.seconds:.1f}s")


def test_cdk_nag_found_nothing_unacknowledged(each_synth):
    reports = {r["pluginName"]: r for r in each_synth.validation_report["pluginReports"]}
    assert "AwsSolutions" in reports
    for name, report in reports.items():
        assert report["conclusion"] == "success", (name, report.get("violations"))
        assert not report.get("violations"), name


def test_every_acknowledged_finding_carries_its_reason(each_synth):
    acknowledged = {}
    for logical_id, resource in each_synth.resources.items():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            assert len(rule["reason"].strip()) >= 40, (logical_id, rule)
            acknowledged.setdefault(rule["id"], set()).add(logical_id)
    # The accepted findings, and nothing else (see infra/magpie_stack/nag.py for why).
    kinds = {re.sub(r"\[.*", "", rule) for rule in acknowledged}
    assert kinds == {
        "AwsSolutions::AwsSolutions-SQS3",
        "AwsSolutions::AwsSolutions-IAM5",
        "AwsSolutions::AwsSolutions-SF1",
        "AwsSolutions::AwsSolutions-SF2",
        "AwsSolutions::AwsSolutions-SMG4",
        "AwsSolutions::AwsSolutions-IAM4",
    }
    # The one managed policy: API Gateway's own logging role (nag.py says why).
    (managed,) = [k for k in acknowledged if k.startswith("AwsSolutions::AwsSolutions-IAM4")]
    assert "AmazonAPIGatewayPushToCloudWatchLogs" in managed


def test_cfn_lint_finds_no_errors(each_synth):
    template = each_synth.outdir / "MagpieStack.template.json"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json", str(template)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    # Exit status: a bit mask of 2 (errors), 4 (warnings), 8 (informational); 1 is a crash.
    assert result.returncode in (0, 2, 4, 6, 8, 10, 12, 14), result.stderr[-4000:]
    findings = json.loads(result.stdout)
    errors = [f for f in findings if f["Level"] == "Error"]
    assert not errors, json.dumps(errors, indent=1)[:4000]


# --- the bus -------------------------------------------------------------------------------


def test_every_rule_is_on_the_magpie_bus_with_a_dead_letter_queue_and_permission(each_synth):
    template = each_synth.expanded
    resources = template["Resources"]
    (bus_id,) = [k for k, r in resources.items() if r["Type"] == "AWS::Events::EventBus"]
    assert resources[bus_id]["Properties"]["Name"] == "magpie"
    assert output_ref(each_synth.template, "EventBusName") == bus_id
    rules = {k: r for k, r in resources.items() if r["Type"] == "AWS::Events::Rule"}
    # 3 Chalice on_cw_event handlers and the core app's one per alert pattern, log, the
    # lake's two routes, analysis; no rule on Step Functions' status changes, which AWS
    # never sends for the Express machine.
    assert len(rules) == 3 + len(ALERT_PATTERNS) + 4
    assert not [r for r in rules.values() if "aws.states" in json.dumps(r)]
    permissions = [
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"
    ]
    log_policy = json.dumps(
        [r for r in resources.values() if r["Type"] == "AWS::Logs::ResourcePolicy"]
    )
    topic_policy = json.dumps(
        [r for r in resources.values() if r["Type"] == "AWS::SNS::TopicPolicy"]
    )
    for rule_id, rule in rules.items():
        properties = rule["Properties"]
        assert ref(properties.get("EventBusName")) == bus_id, rule_id
        for target in properties["Targets"]:
            assert ref(target["DeadLetterConfig"]["Arn"]) is not None, rule_id
            assert "RetryPolicy" in target, rule_id
            target_id = ref(target["Arn"])
            kind = resources[target_id]["Type"]
            if kind == "AWS::Lambda::Function":
                assert any(
                    p["Principal"] == "events.amazonaws.com"
                    and ref(p["FunctionName"]) == target_id
                    and ref(p["SourceArn"]) == rule_id
                    for p in permissions
                ), f"{rule_id}: no invoke permission scoped to the rule"
            elif kind == "AWS::StepFunctions::StateMachine":
                assert grants(
                    template, ref(target["RoleArn"]), "states:StartExecution", target_id
                ), rule_id
            elif kind == "AWS::KinesisFirehose::DeliveryStream":
                assert grants(
                    template, ref(target["RoleArn"]), "firehose:PutRecordBatch", target_id
                ), rule_id
            elif kind == "AWS::SNS::Topic":
                assert "events.amazonaws.com" in topic_policy and target_id in topic_policy
            elif kind == "AWS::Logs::LogGroup":
                assert "events.amazonaws.com" in log_policy and target_id in log_policy
            else:
                pytest.fail(f"{rule_id}: unexpected target {kind}")


def test_rule_dead_letter_queue_accepts_rules_on_the_magpie_bus(each_synth):
    resources = each_synth.expanded["Resources"]
    dlqs = {
        ref(t["DeadLetterConfig"]["Arn"])
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule"
        for t in r["Properties"]["Targets"]
    }
    (dlq,) = dlqs
    policies = [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::SQS::QueuePolicy"
        and any(ref(q) == dlq for q in r["Properties"]["Queues"])
    ]
    text = json.dumps(policies)
    assert "events.amazonaws.com" in text and ":rule/magpie/*" in text


def test_asynchronous_functions_dead_letter_and_subscriptions_redrive(each_synth):
    resources = each_synth.expanded["Resources"]
    triggered = {
        ref(t["Arn"])
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule"
        for t in r["Properties"]["Targets"]
    }
    subscribed = {
        ref(r["Properties"]["Endpoint"])
        for r in resources.values()
        if r["Type"] == "AWS::SNS::Subscription" and r["Properties"]["Protocol"] == "lambda"
    }
    for name, (logical_id, function) in functions(each_synth.expanded).items():
        if logical_id in triggered | subscribed:
            assert "TargetArn" in function["Properties"].get("DeadLetterConfig", {}), name
    lambda_subscriptions = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::SNS::Subscription" and r["Properties"]["Protocol"] == "lambda"
    ]
    assert lambda_subscriptions
    for subscription in lambda_subscriptions:
        assert "deadLetterTargetArn" in subscription["RedrivePolicy"]
    assert {
        functions(each_synth.expanded)[n][0]
        for n in (
            "text_responder",
            "image_responder",
            "send_tweet",
            "forward_alert",
            *(f"alert_{name}" for name in ALERT_PATTERNS),
        )
    } <= triggered | subscribed


def test_only_magpie_roles_may_publish_each_with_its_own_source(each_synth):
    template = each_synth.template
    (bus,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Events::EventBus"]
    policies = bus["Properties"]["Policy"]["Statement"]
    everyone = [s for s in policies if "ArnNotEquals" in s.get("Condition", {})]
    assert len(everyone) == 1 and everyone[0]["Effect"] == "Deny"
    allowed_roles = {ref(a) for a in everyone[0]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]}

    # Every role whose own policy can PutEvents is on the list, with one source.
    publishers: dict[str, str] = {}
    for role_id, role in template["Resources"].items():
        if role["Type"] != "AWS::IAM::Role":
            continue
        for statement in role_statements(template, role_id):
            if "events:PutEvents" in as_list(statement["Action"]):
                publishers[role_id] = statement["Condition"]["StringEquals"]["events:source"]
    assert set(publishers) == allowed_roles
    assert set(publishers.values()) == {
        events.INGRESS,
        events.ANALYSIS,
        events.RESPONDERS,
        events.EGRESS,
    }
    per_source = [s for s in policies if "StringNotEquals" in s.get("Condition", {})]
    for statement in per_source:
        assert statement["Effect"] == "Deny"
        source = statement["Condition"]["StringNotEquals"]["events:source"]
        roles = {ref(a) for a in statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]}
        assert roles == {r for r, s in publishers.items() if s == source}
    assert len(per_source) == 4
    # Only the responders may make the bot tweet.
    functions_by_role = {
        ref(f["Properties"]["Role"]): name
        for name, (_, f) in functions(each_synth.expanded).items()
    }
    assert {functions_by_role[r] for r, s in publishers.items() if s == events.RESPONDERS} == {
        "text_responder",
        "image_responder",
    }


def test_archive_log_metrics_dashboard_and_alarms(synth):
    (archive,) = synth.of_type("AWS::Events::Archive").values()
    assert archive["Properties"]["RetentionDays"] < Settings(env={}).reply_memory_days
    filters = synth.of_type("AWS::Logs::MetricFilter").values()
    metrics = {f["Properties"]["MetricTransformations"][0]["MetricName"] for f in filters}
    assert metrics == ALL_DETAIL_TYPES
    for f in filters:
        name = f["Properties"]["MetricTransformations"][0]["MetricName"]
        assert f["Properties"]["FilterPattern"] == f'{{ $.detail-type = "{name}" }}'
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for detail_type in ALL_DETAIL_TYPES:
        assert detail_type in body
    alarms = synth.of_type("AWS::CloudWatch::Alarm")
    assert len(alarms) == 4
    topic = output_ref(synth.template, "AlertTopicArn")
    for alarm in alarms.values():
        assert [ref(a) for a in alarm["Properties"]["AlarmActions"]] == [topic]
    queues = {
        ref(d["Value"]) for a in alarms.values() for d in a["Properties"].get("Dimensions", [])
    }
    assert queues == set(synth.of_type("AWS::SQS::Queue"))
    for group in synth.of_type("AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] > 0


# --- functions -----------------------------------------------------------------------------


def test_each_function_got_its_environment(each_synth):
    outputs = each_synth.template["Outputs"]
    found = functions(each_synth.expanded)
    every = EXPECTED_LITE_ENVIRONMENT if each_synth.profile == "lite" else EXPECTED_ENVIRONMENT
    assert set(found) == set(every)
    for name, expected in every.items():
        variables = dict(found[name][1]["Properties"]["Environment"]["Variables"])
        assert variables.pop("MAGPIE_BACKEND") == "aws", name
        assert variables.pop("AWS_EC2_METADATA_DISABLED") == "true", name
        assert set(variables) == set(expected), name
        for key, source in expected.items():
            if source.startswith("param:"):
                assert variables[key] == {"Ref": source.removeprefix("param:")}, (name, key)
            elif source.startswith("value:"):
                assert variables[key] == source.removeprefix("value:"), (name, key)
            else:
                assert variables[key] == outputs[source]["Value"], (name, key)


def test_every_function_has_its_own_role_and_log_group_with_retention(each_synth):
    template = each_synth.expanded
    groups = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Logs::LogGroup":
            groups[logical_id] = json.dumps(resource["Properties"].get("LogGroupName"))
    roles = set()
    for name, (logical_id, function) in functions(template).items():
        (group_id,) = [
            g
            for g, text in groups.items()
            if ('"/aws/lambda/${' in text and f'"{logical_id}"' in text)
            or f"/aws/lambda/${{{logical_id}}}" in text
        ]
        retention = template["Resources"][group_id]["Properties"]["RetentionInDays"]
        assert retention == 30, name
        role = ref(function["Properties"]["Role"])
        assert role not in roles, f"{name} shares a role"
        roles.add(role)
        assert grants(template, role, "logs:PutLogEvents", group_id), name


# Actions that AWS offers no resource scoping for, and that the stack grants on "*".
UNSCOPABLE = re.compile(
    r"^(comprehend:(Batch)?Detect\w+|rekognition:(Detect\w+|RecognizeCelebrities)"
    r"|logs:(CreateLogDelivery|GetLogDelivery|UpdateLogDelivery|DeleteLogDelivery"
    r"|ListLogDeliveries|PutResourcePolicy|DescribeResourcePolicies|DescribeLogGroups))$"
)


def test_iam_is_least_privilege(each_synth):
    for logical_id, resource in each_synth.expanded["Resources"].items():
        if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::Role"):
            continue
        documents = (
            [resource["Properties"]["PolicyDocument"]]
            if resource["Type"] == "AWS::IAM::Policy"
            else [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
        )
        for document in documents:
            for statement in statements(document):
                actions = as_list(statement["Action"])
                assert not [a for a in actions if "*" in a], (logical_id, actions)
                if "*" in as_list(statement.get("Resource", [])):
                    assert all(UNSCOPABLE.match(a) for a in actions), (logical_id, actions)
        if not logical_id.startswith("ApiGatewayLogsRole"):  # AWS's own (nag.py)
            assert "ManagedPolicyArns" not in resource.get("Properties", {}), logical_id


def test_lex_alias_calls_the_fulfilment_function_with_a_scoped_permission(synth):
    template = synth.expanded
    resources = template["Resources"]
    fulfilment, _ = functions(template)["lex_fulfilment"]
    bot_file = json.loads((ROOT / "chalicelib" / "responders" / "bot.json").read_text())
    ((bot_id, bot),) = [(k, r) for k, r in resources.items() if r["Type"] == "AWS::Lex::Bot"]
    ((version_id, version),) = [
        (k, r) for k, r in resources.items() if r["Type"] == "AWS::Lex::BotVersion"
    ]
    ((alias_id, alias),) = [
        (k, r) for k, r in resources.items() if r["Type"] == "AWS::Lex::BotAlias"
    ]

    locales = bot["Properties"]["BotLocales"]
    assert [loc["LocaleId"] for loc in locales] == bot_file["localeIds"]
    # Every language the responders answer in is a locale of the deployed bot.
    spoken = {"en", "es", "fr", "de", "it", "pt", "nl", "ja"}
    assert {loc["LocaleId"][:2] for loc in locales} == spoken
    for locale in locales:
        assert locale["NluConfidenceThreshold"] == bot_file["nluConfidenceThreshold"]
        by_name = {i["Name"]: i for i in locale["Intents"]}
        assert list(by_name) == [i["name"] for i in bot_file["intents"]]
        for intent in intents_for_locale(bot_file, locale["LocaleId"]):
            deployed = by_name[intent["name"]]
            assert [u["Utterance"] for u in deployed.get("SampleUtterances", [])] == [
                u["utterance"] for u in intent.get("sampleUtterances", [])
            ]
            assert deployed["FulfillmentCodeHook"]["Enabled"] is True
    # Each locale is taught in its own language: no two locales of different languages
    # share their utterances.
    taught = {
        loc["LocaleId"]: {
            u["Utterance"] for i in loc["Intents"] for u in i.get("SampleUtterances", [])
        }
        for loc in locales
    }
    for one, two in itertools.combinations(taught, 2):
        assert (one[:2] == two[:2]) == (taught[one] == taught[two]), (one, two)
    assert bot["Properties"]["DataPrivacy"] == {"ChildDirected": False}

    assert ref(version["Properties"]["BotId"]) == bot_id
    assert {
        s["BotVersionLocaleDetails"]["SourceBotVersion"]
        for s in version["Properties"]["BotVersionLocaleSpecification"]
    } == {"DRAFT"}
    assert ref(alias["Properties"]["BotVersion"]) == version_id
    settings = alias["Properties"]["BotAliasLocaleSettings"]
    assert [s["LocaleId"] for s in settings] == bot_file["localeIds"]
    for setting in settings:
        hook = setting["BotAliasLocaleSetting"]["CodeHookSpecification"]["LambdaCodeHook"]
        assert hook["LambdaArn"] == {"Fn::GetAtt": [fulfilment, "Arn"]}

    (permission,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Permission"
        and r["Properties"]["Principal"] == "lexv2.amazonaws.com"
    ]
    assert ref(permission["FunctionName"]) == fulfilment
    assert permission["SourceArn"] == {"Fn::GetAtt": [alias_id, "Arn"]}
    # The text responder may talk to this alias, and to nothing else in Lex.
    responder, (_, function) = "text_responder", functions(template)["text_responder"]
    role = ref(function["Properties"]["Role"])
    assert grants(template, role, "lex:RecognizeText", alias_id), responder


# --- the state machine ---------------------------------------------------------------------


def _definition(synth) -> dict[str, Any]:
    (machine,) = synth.of_type("AWS::StepFunctions::StateMachine").values()
    _, parts = machine["Properties"]["DefinitionString"]["Fn::Join"]
    return json.loads("".join(p if isinstance(p, str) else "ARN" for p in parts))


def _states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for name, state in definition["States"].items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(_states(branch))
        if "ItemProcessor" in state:
            found.update(_states(state["ItemProcessor"]))
    return found


def test_analysis_is_an_express_workflow_with_retries_catch_and_a_capped_map(synth):
    (machine,) = synth.of_type("AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["StateMachineType"] == "EXPRESS"
    # Failures only, with execution data (level ALL was most of the cost per message).
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ERROR"
    assert machine["Properties"]["LoggingConfiguration"]["IncludeExecutionData"] is True
    states = _states(_definition(synth))
    tasks = {n: s for n, s in states.items() if s["Type"] == "Task"}
    assert set(tasks) == {
        "DownloadMedia",
        "AnalyseText",
        "AnalyseImage",
        "PublishAnalysis",
        "PublishAnalysisFailed",
    }
    for name, task in tasks.items():
        refused, failed = task["Retry"]
        assert "Lambda.TooManyRequestsException" in refused["ErrorEquals"], name
        assert refused["BackoffRate"] > 1 and refused["JitterStrategy"] == "FULL", name
        assert failed["ErrorEquals"] == ["States.ALL"], name
        assert task["TimeoutSeconds"] > 0, name  # priced by budget.py (test_budget.py)
    (parallel,) = [s for s in states.values() if s["Type"] == "Parallel"]
    assert len(parallel["Branches"]) == 2
    (images,) = [s for s in states.values() if s["Type"] == "Map"]
    assert 1 <= images["MaxConcurrency"] <= 4
    for name in ("DownloadMedia", "Analyse", "PublishAnalysis"):
        assert states[name]["Catch"][0]["Next"] == "PublishAnalysisFailed"
    assert states["PublishAnalysisFailed"]["Parameters"] == {
        "Message.$": "$.detail",
        "Error.$": "$.Failure",
    }


def test_an_analysis_ending_the_workflow_did_not_report_reaches_analysis_stopped(synth):
    """Express executions send no status change to EventBridge: their endings reach the
    core app from the state machine's log group, through a subscription filter."""
    template = synth.expanded
    resources = template["Resources"]
    (machine,) = synth.of_type("AWS::StepFunctions::StateMachine").values()
    (destination,) = machine["Properties"]["LoggingConfiguration"]["Destinations"]
    log_group_id = ref(destination["CloudWatchLogsLogGroup"]["LogGroupArn"])
    (subscription,) = [
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::SubscriptionFilter"
    ]
    stopped_id = functions(template)["analysis_stopped"][0]
    assert ref(subscription["LogGroupName"]) == log_group_id
    assert ref(subscription["DestinationArn"]) == stopped_id
    pattern = subscription["FilterPattern"]
    for ending in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
        assert f'$.type = "{ending}"' in pattern
    assert pattern.count("$.type") == 3  # nothing else the ERROR level logs
    (permission,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Permission"
        and ref(r["Properties"]["FunctionName"]) == stopped_id
    ]
    assert permission["Principal"] == "logs.amazonaws.com"
    assert ref(permission["SourceArn"]) == log_group_id
    # The first step records each execution's message for analysis_stopped to read.
    states = _states(_definition(synth))
    assert states["DownloadMedia"]["Parameters"] == {
        "Message.$": "$.detail",
        "Execution.$": "$$.Execution.Id",
    }
    download_role = ref(functions(template)["download_media"][1]["Properties"]["Role"])
    table_id = output_ref(synth.template, "IdempotencyTableName")
    assert grants(template, download_role, "dynamodb:PutItem", table_id)
    assert not grants(template, download_role, "dynamodb:GetItem", table_id)
    stopped_role = ref(resources[stopped_id]["Properties"]["Role"])
    assert grants(template, stopped_role, "dynamodb:GetItem", table_id)


# --- alerts --------------------------------------------------------------------------------


def test_each_alert_rule_invokes_an_alert_function_that_may_publish_once(synth):
    """No rule publishes to the topic itself (a rule cannot tell a redelivered event from a
    new one): each alert pattern invokes its core function, which claims the alert in the
    idempotency table and publishes to the encrypted topic."""
    template, resources = synth.expanded, synth.expanded["Resources"]
    topic = output_ref(synth.template, "AlertTopicArn")
    (topic_resource,) = [r for k, r in resources.items() if k == topic]
    assert topic_resource["Properties"]["TopicName"] == "magpie-alerts"
    rules = [r for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    assert not [r for r in rules for t in r["Properties"]["Targets"] if ref(t["Arn"]) == topic]
    table = output_ref(synth.template, "IdempotencyTableName")
    key = ref(topic_resource["Properties"]["KmsMasterKeyId"])
    by_function = {name: function_id for name, (function_id, _) in functions(template).items()}
    patterns = {}
    for rule in rules:
        (target,) = rule["Properties"]["Targets"]
        patterns[ref(target["Arn"])] = rule["Properties"]["EventPattern"]
    for name, pattern in ALERT_PATTERNS.items():
        function_id = by_function[f"alert_{name}"]
        assert patterns[function_id] == pattern, name
        role = ref(resources[function_id]["Properties"]["Role"])
        assert grants(template, role, "sns:Publish", topic), name
        assert grants(template, role, "kms:GenerateDataKey", key), name
        assert grants(template, role, "dynamodb:PutItem", table), name
        environment = resources[function_id]["Properties"]["Environment"]["Variables"]
        assert ref(environment["ALERT_TOPIC_ARN"]) == topic
        assert ref(environment["IDEMPOTENCY_TABLE"]) == table
    emails = [
        s["Properties"]
        for s in synth.of_type("AWS::SNS::Subscription").values()
        if s["Properties"]["Protocol"] == "email"
    ]
    assert emails == [
        {"Endpoint": {"Ref": "AlertEmail"}, "Protocol": "email", "TopicArn": {"Ref": topic}}
    ]


# --- storage -------------------------------------------------------------------------------


def test_buckets_are_encrypted_private_and_tls_only(each_synth):
    buckets = each_synth.of_type("AWS::S3::Bucket")
    # media, lake, Athena results, access logs; and lite's known faces
    assert len(buckets) == 4 + ("FacesBucketName" in each_synth.template["Outputs"])
    policies = {
        ref(p["Properties"]["Bucket"]): json.dumps(p["Properties"]["PolicyDocument"])
        for p in each_synth.of_type("AWS::S3::BucketPolicy").values()
    }
    for logical_id, bucket in buckets.items():
        properties = bucket["Properties"]
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"], logical_id
        block = properties["PublicAccessBlockConfiguration"]
        assert all(
            block[k]
            for k in (
                "BlockPublicAcls",
                "BlockPublicPolicy",
                "IgnorePublicAcls",
                "RestrictPublicBuckets",
            )
        )
        assert '"aws:SecureTransport": "false"' in policies[logical_id], logical_id


def test_media_expires_after_a_day(synth):
    media = synth.resources[output_ref(synth.template, "MediaBucketName")]
    rules = media["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(
        r.get("ExpirationInDays") == 1 and r["Status"] == "Enabled" and "Prefix" not in r
        for r in rules
    )


def test_idempotency_table_has_powertools_key_and_ttl(synth):
    table = synth.resources[output_ref(synth.template, "IdempotencyTableName")]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"


# --- the lake ------------------------------------------------------------------------------


def test_firehose_writes_newline_delimited_compressed_date_partitioned_records(synth):
    date = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
    prefixes = {}
    for stream in synth.of_type("AWS::KinesisFirehose::DeliveryStream").values():
        s3 = stream["Properties"]["ExtendedS3DestinationConfiguration"]
        prefixes[s3["Prefix"]] = s3["ErrorOutputPrefix"]
        assert s3["CompressionFormat"] == "GZIP"
        processors = s3["ProcessingConfiguration"]["Processors"]
        assert [p["Type"] for p in processors] == ["AppendDelimiterToRecord"]  # no Lambda
        assert s3["ProcessingConfiguration"]["Enabled"] is True
        assert ref(s3["BucketARN"]) == output_ref(synth.template, "DataLakeBucketName")
    # Magpie's events at the root, X's raw items under x-raw/; failures under errors/ (expired).
    error_type = "!{firehose:error-output-type}/"
    assert prefixes == {
        date: "errors/" + error_type + date,
        RAW_X_PREFIX + date: "errors/" + RAW_X_PREFIX + error_type + date,
    }


def _parse_hive(text: str) -> Any:
    """A Hive type string -> str | ("array", t) | ("map", k, v) | ("struct", [(n, t)])."""
    tokens = re.findall(r"[<>,:]|[^<>,:]+", text)
    position = 0

    def parse() -> Any:
        nonlocal position
        word = tokens[position]
        position += 1
        if position < len(tokens) and tokens[position] == "<":
            position += 1
            if word == "array":
                inner = parse()
                position += 1  # >
                return ("array", inner)
            if word == "map":
                key = parse()
                position += 1  # ,
                value = parse()
                position += 1  # >
                return ("map", key, value)
            fields = []
            while True:
                name = tokens[position]
                position += 2  # name :
                fields.append((name, parse()))
                separator = tokens[position]
                position += 1
                if separator == ">":
                    return ("struct", fields)
        return word

    return parse()


SCALARS = {str: "string", int: "bigint", float: "double", bool: "boolean"}


def _matches(shape: Any, tp: Any, where: str) -> None:
    """The column shape follows the model annotation, derived here independently of infra:
    every dataclass field, in order, with its type; opaque objects (Any, dict[str, Any]) and
    open-keyed maps may be spelled out as any struct."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _matches(shape, inner, where)
    if origin is list:
        assert isinstance(shape, tuple) and shape[0] == "array", where
        return _matches(shape[1], typing.get_args(tp)[0], where + "[]")
    if origin is dict:
        _, value = typing.get_args(tp)
        if isinstance(shape, tuple) and shape[0] == "struct":
            if value is not Any:
                for name, field_shape in shape[1]:
                    _matches(field_shape, value, f"{where}.{name}")
            return None
        assert shape == ("string" if value is Any else ("map", "string", SCALARS[value])), where
        return None
    if dataclasses.is_dataclass(tp):
        assert isinstance(shape, tuple) and shape[0] == "struct", where
        hints = typing.get_type_hints(tp)
        assert [n for n, _ in shape[1]] == [f.name for f in dataclasses.fields(tp)], where
        for (name, field_shape), field in zip(shape[1], dataclasses.fields(tp), strict=True):
            _matches(field_shape, hints[field.name], f"{where}.{name}")
        return None
    if tp is Any:
        return None
    assert shape == SCALARS[tp], (where, shape, tp)
    return None


def _accepts(shape: Any, tp: Any, value: Any, where: str) -> None:
    """A real event fits the columns: every key the model types is a column of the right
    kind. Inside opaque provider payloads the declared struct may name only some keys (the
    JSON SerDe ignores the others), so there only the declared ones are followed."""
    if value is None:
        return
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _accepts(shape, inner, value, where)
    if origin is list:
        assert isinstance(value, list) and shape[0] == "array", where
        for i, item in enumerate(value):
            _accepts(shape[1], typing.get_args(tp)[0], item, f"{where}[{i}]")
        return None
    if dataclasses.is_dataclass(tp):
        assert isinstance(value, dict) and shape[0] == "struct", where
        fields, hints = dict(shape[1]), typing.get_type_hints(tp)
        for key, item in value.items():
            assert key in fields, f"{where}.{key} is not a column"
            _accepts(fields[key], hints[key], item, f"{where}.{key}")
        return None
    if isinstance(shape, tuple) and shape[0] == "struct":  # an opaque object, spelled out
        assert isinstance(value, dict), where
        return None
    if isinstance(shape, tuple) and shape[0] == "array":
        assert isinstance(value, list), where
        return None
    kinds = {"string": str, "double": (int, float), "bigint": int, "boolean": bool}
    if shape in kinds and tp is not Any:
        assert isinstance(value, kinds[shape]), (where, shape, value)
    return None


def test_glue_columns_match_the_message_analysed_model(synth):
    (table_input,) = [
        t["Properties"]["TableInput"]
        for t in synth.of_type("AWS::Glue::Table").values()
        if t["Properties"]["TableInput"]["Name"] == "analysed-messages-table"
    ]
    assert table_input["Name"] == "analysed-messages-table"
    descriptor = table_input["StorageDescriptor"]
    assert descriptor["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    columns = [(c["Name"], _parse_hive(c["Type"])) for c in descriptor["Columns"]]
    names = [name for name, _ in columns]
    assert names == [
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    ]
    assert dict(columns)["resources"] == ("array", "string")
    _matches(dict(columns)["detail"], events.MessageAnalysed, "detail")
    # The reference's queries read these as structs (labels.name, celebrityfaces.name).
    images = dict(dict(dict(columns)["detail"][1])["Analysis"][1])["Images"][1]
    image_analysis = dict(dict(images[1])["Analysis"][1])
    for opaque in ("Labels", "CelebrityFaces"):
        item = image_analysis[opaque][1]
        assert item[0] == "struct" and "Name" in dict(item[1]), opaque
    assert [k["Name"] for k in table_input["PartitionKeys"]] == ["year", "month", "day"]
    assert table_input["Parameters"]["projection.enabled"] == "true"

    fixture = json.loads(
        (ROOT / "tests" / "fixtures" / "events" / "MESSAGE_ANALYSED.json").read_text()
    )
    envelope = {
        "version": "0",
        "id": "x",
        "detail-type": "MESSAGE_ANALYSED",
        "source": "magpie.analysis",
        "account": "123456789012",
        "time": "2026-07-15T14:03:41Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": fixture,
    }
    _accepts(dict(columns)["detail"], events.MessageAnalysed, fixture, "detail")
    assert [name for name, _ in columns[:8]] == [k for k in envelope if k != "detail"]


def test_athena_workgroup_and_a_named_query_per_sql_file(synth):
    (workgroup,) = synth.of_type("AWS::Athena::WorkGroup").values()
    configuration = workgroup["Properties"]["WorkGroupConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert (
        configuration["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"]
        == "SSE_S3"
    )
    files = {}
    for folder in (ROOT / "queries" / "athena", ROOT / "queries"):
        for path in sorted(folder.glob("*.sql")) if folder.is_dir() else []:
            if path.read_text(encoding="utf-8").strip():
                files[path.stem] = path.read_text(encoding="utf-8").strip()
    queries = {
        q["Properties"]["Name"]: q["Properties"]
        for q in synth.of_type("AWS::Athena::NamedQuery").values()
    }
    assert set(queries) == set(files)
    for name, query in queries.items():
        assert query["QueryString"] == files[name]
        assert query["Database"] == "magpie"
        assert query["Description"] == files[name].splitlines()[0].removeprefix("--").strip()


def with_suffix(location: Any, suffix: str) -> Any:
    """A CloudFormation string (plain or an Fn::Join) with `suffix` appended."""
    if not suffix:
        return location
    if isinstance(location, str):
        return location + suffix
    separator, parts = location["Fn::Join"]
    return {"Fn::Join": [separator, [*parts[:-1], parts[-1] + suffix]]}


def test_the_shared_queries_tables_exist_over_the_lake(synth):
    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in synth.of_type("AWS::Glue::Table").values()
    }
    folder = ROOT / "queries" / "glue"
    declared = (
        {
            json.loads(p.read_text())["name"]: json.loads(p.read_text())
            for p in folder.glob("*.json")
        }
        if folder.is_dir()
        else {}
    )
    assert set(tables) == {"analysed-messages-table"} | set(declared)
    for name, spec in declared.items():
        if name == "analysed-messages-table":
            continue  # generated from the model (the test above)
        columns = [(c["Name"], c["Type"]) for c in tables[name]["StorageDescriptor"]["Columns"]]
        assert columns == [(c["name"], c["type"]) for c in spec["columns"]], name
    root = tables["analysed-messages-table"]["StorageDescriptor"]["Location"]
    for name, table in tables.items():
        prefix = declared.get(name, {}).get("prefix", "")
        assert table["StorageDescriptor"]["Location"] == with_suffix(root, prefix), name
        assert table["Parameters"]["projection.enabled"] == "true"
    assert declared["x_raw_events"]["prefix"] == RAW_X_PREFIX


def test_the_lake_takes_every_event_once_and_no_replays(synth):
    streams = synth.of_type("AWS::KinesisFirehose::DeliveryStream")
    patterns = {}
    for stream_id, stream in streams.items():
        (rule,) = [
            r["Properties"]
            for r in synth.of_type("AWS::Events::Rule").values()
            if ref(r["Properties"]["Targets"][0]["Arn"]) == stream_id
        ]
        prefix = stream["Properties"]["ExtendedS3DestinationConfiguration"]["Prefix"]
        patterns[prefix.split("year=")[0]] = rule["EventPattern"]
    own = {"account": [{"Ref": "AWS::AccountId"}], "replay-name": [{"exists": False}]}
    # The two routes of chalicelib/lake_routes.py, exact complements on detail-type.
    assert patterns == {
        "": {**own, **MAGPIE_EVENTS_PATTERN},
        RAW_X_PREFIX: {**own, **RAW_X_PATTERN},
    }


EXPECTED_FUNCTIONS = {
    "magpie-core": {
        "download_media",
        "analyse_text",
        "analyse_image",
        "publish_analysis",
        "publish_analysis_failed",
        "analysis_stopped",
        "lex_fulfilment",
        "alert_negative",
        "alert_analysis_failed",
        "alert_reply_failed",
        "forward_alert",
    },
    "magpie-ingress": {"api_handler"},
    "magpie-responders": {"text_responder", "image_responder"},
    "magpie-egress": {"send_tweet"},
}


def test_each_chalice_app_brought_its_own_functions_and_package(synth):
    """Several chalice.cdk constructs in one process must not reuse the first app's module."""
    by_app: dict[str, set[str]] = {}
    packages: dict[str, set[str]] = {}
    for resource in synth.of_type("AWS::Serverless::Function").values():
        properties = resource["Properties"]
        app = properties["Tags"]["aws-chalice"].rsplit("app=", 1)[1]
        handler = properties["Handler"]
        by_app.setdefault(app, set()).add(
            "api_handler" if handler == "app.app" else handler.split(".", 1)[1]
        )
        packages.setdefault(app, set()).add(json.dumps(properties["CodeUri"]))
        assert "stage=prod" in properties["Tags"]["aws-chalice"]
    assert by_app == EXPECTED_FUNCTIONS
    assert all(len(keys) == 1 for keys in packages.values())
    assert len({next(iter(keys)) for keys in packages.values()}) == 4
