"""MagpieStack: all of Magpie in one CloudFormation stack.

The four Chalice apps come in through `chalice.cdk.Chalice` (chalice_apps.py); this stack
adds what Chalice cannot declare: the custom bus and who may publish on it, the archive,
logs, metrics, dashboard and alarms, the analysis state machine, the alert topic, the Lex
bot, the buckets, the idempotency table, the data lake, the dead-letter
queues, and one least-privilege role per function.

`profile` (CDK context `magpie:profile`) picks the AI providers: `full` (default) uses
Comprehend, Rekognition and Lex; `lite` runs the local models in container-image functions
and deploys no Lex bot (lite.py).

`MagpieStack.__init__` lists the steps in order; beside the constructs of their own
(bus.py, analysis.py, lake.py, lex.py, ...) the stack's parameters are in parameters.py,
each function's environment and permissions in wiring.py, the alert topic in
alerts.py, the alarms and dashboard in monitoring.py. Those modules make their constructs
with the stack as scope, never a scope of their own: a logical id derives from the path, so
moving code between them moves no resource.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as logs_destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from chalicelib import events as contract
from chalicelib.analysis.endings import ENDINGS
from magpie_stack import nag, wiring
from magpie_stack.alerts import alert_topic, alert_webhook_secret, alerts_key
from magpie_stack.analysis import ANALYSIS_STEPS, AnalysisWorkflow
from magpie_stack.bus import BUS_NAME, EventSpine
from magpie_stack.chalice_apps import ChaliceApp
from magpie_stack.lake import DataLake, secure_bucket
from magpie_stack.layers import powertools_layer
from magpie_stack.lex import LexBot
from magpie_stack.lite import DEFAULT_PROFILE, resolve_profile, stage_docker_context
from magpie_stack.monitoring import alarms_and_dashboard
from magpie_stack.parameters import declare_parameters

LOG_RETENTION = logs.RetentionDays.ONE_MONTH
MEDIA_EXPIRY_DAYS = 1


def _output_id(app: str, function: str) -> str:
    return app.title() + "".join(p.title() for p in function.split("_")) + "RoleArn"


class MagpieStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repo_root: Path,
        build_dir: Path,
        profile: str = DEFAULT_PROFILE,
        **kwargs: object,
    ) -> None:
        self.profile = resolve_profile(profile)  # before any packaging: fail fast
        super().__init__(scope, construct_id, **kwargs)
        self.template_options.description = (
            "Magpie: a serverless, event-driven bot for X (four Chalice apps on one bus)"
        )
        self.params = declare_parameters(self, lite=self.lite)
        self.rule_dead_letters, self.lambda_dead_letters = self._dead_letter_queues()
        self.access_logs, self.media, self.faces = self._buckets()
        self.idempotency = self._idempotency_table()
        self.twitter_secret = secretsmanager.Secret.from_secret_name_v2(
            self, "TwitterSecret", self.params.secret_name.value_as_string
        )
        self.spine = EventSpine(
            self, "Events", log_retention=LOG_RETENTION, dead_letters=self.rule_dead_letters
        )
        self.alerts_key = alerts_key(self)
        self.topic = alert_topic(
            self,
            email=self.params.alert_email.value_as_string,
            subscription_dead_letters=self.lambda_dead_letters,
            key=self.alerts_key,
        )
        self.webhook_secret = alert_webhook_secret(
            self, url=self.params.webhook_url, key=self.alerts_key
        )
        self.apps = self._chalice_apps(repo_root, build_dir)

        # Each function's environment and permissions, app by app (wiring.py).
        wiring.core(self)
        self.analysis_image: ecr_assets.DockerImageAsset | None = None
        if self.lite:
            self.analysis_image = self._lite_analysis_image(repo_root, build_dir)
            wiring.lite_analysis(self, self.analysis_image)
        else:
            wiring.full_analysis(self)
        wiring.step_timeouts(self)
        self.powertools = powertools_layer(self, "PowertoolsLayer", build_dir / "layers")
        wiring.ingress(self, self.powertools)
        wiring.webhook_limits(self, self._webhook_access_logs())
        self.lex = None if self.lite else self._lex_bot(repo_root)
        wiring.responders(self, self.lex)
        wiring.egress(self)
        wiring.rules_onto_bus(self)
        self.publishers = wiring.publishers(self)
        self.spine.restrict_publishers(self.publishers)

        self.analysis = self._analysis_workflow()
        self.lake = self._data_lake(repo_root)
        self.alarms = self._alarms_and_dashboard()
        self._outputs()
        nag.suppress(self)
        nag.checkov_skips(self)

    @property
    def lite(self) -> bool:
        return self.profile == "lite"

    # --- dead letters, storage ------------------------------------------------------------

    def _dead_letter_queues(self) -> tuple[sqs.Queue, sqs.Queue]:
        """One queue for the rules' failed deliveries, one for the functions' failed
        asynchronous invocations (and the alert subscription's)."""
        rule_dead_letters = self._dead_letter_queue("RuleDeadLetters")
        lambda_dead_letters = self._dead_letter_queue("LambdaDeadLetters")
        # Rules on the Magpie bus (Chalice's and the stack's) may dead-letter here.
        rule_dead_letters.add_to_resource_policy(
            iam.PolicyStatement(
                sid="RulesOnTheMagpieBus",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[rule_dead_letters.queue_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": self.format_arn(
                            service="events", resource="rule", resource_name=f"{BUS_NAME}/*"
                        )
                    }
                },
            )
        )
        return rule_dead_letters, lambda_dead_letters

    def _dead_letter_queue(self, construct_id: str) -> sqs.Queue:
        return sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )

    def _buckets(self) -> tuple[s3.Bucket, s3.Bucket, s3.Bucket | None]:
        """The access logs, the media, and (lite only) the known faces."""
        access_logs = secure_bucket(
            self,
            "AccessLogs",
            lifecycle_rules=[s3.LifecycleRule(id="logs", expiration=cdk.Duration.days(90))],
        )
        media = secure_bucket(
            self,
            "Media",
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="media/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire",
                    expiration=cdk.Duration.days(MEDIA_EXPIRY_DAYS),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
        )
        # lite: the known-faces gallery (`magpie faces --aws` writes it, analyse_image reads
        # it). Versioned, so an enrolment that went wrong can be undone; never expires.
        faces = (
            secure_bucket(
                self,
                "Faces",
                versioned=True,
                server_access_logs_bucket=access_logs,
                server_access_logs_prefix="faces/",
            )
            if self.lite
            else None
        )
        return access_logs, media, faces

    def _idempotency_table(self) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            "Idempotency",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            time_to_live_attribute="expiration",  # Powertools' default attribute names
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
        )

    # --- the apps and what they call ------------------------------------------------------

    def _chalice_apps(self, repo_root: Path, build_dir: Path) -> dict[str, ChaliceApp]:
        """The four apps, each function with a role of its own (wiring.py fills it in)."""
        apps = {
            "core": ChaliceApp(self, "Core", project_dir=repo_root, build_dir=build_dir / "core"),
            "ingress": ChaliceApp(
                self, "Ingress", project_dir=repo_root / "ingress", build_dir=build_dir / "ingress"
            ),
            "responders": ChaliceApp(
                self,
                "Responders",
                project_dir=repo_root / "responders",
                build_dir=build_dir / "responders",
            ),
            "egress": ChaliceApp(
                self, "Egress", project_dir=repo_root / "egress", build_dir=build_dir / "egress"
            ),
        }
        for app in apps.values():
            for name in app.function_names:
                app.give_role(name)
        return apps

    def _lite_analysis_image(self, repo_root: Path, build_dir: Path) -> ecr_assets.DockerImageAsset:
        """The image analyse_text and analyse_image run from in lite (the local models)."""
        # The build context is staged now, built by `cdk deploy` (infra/lite/Dockerfile).
        return ecr_assets.DockerImageAsset(
            self,
            "LiteAnalysisImage",
            directory=str(stage_docker_context(repo_root, build_dir / "lite-image")),
            platform=ecr_assets.Platform.LINUX_AMD64,
            display_name="Magpie lite analysis (local models)",
        )

    def _lex_bot(self, repo_root: Path) -> LexBot:
        """Lex, whose alias calls core's lex_fulfilment (full only).

        lite has no bot: text_responder matches bot.json's intents itself and
        lex_fulfilment, still deployed with the core app, is never invoked (nothing may
        invoke it)."""
        core = self.apps["core"]
        return LexBot(
            self,
            "Lex",
            bot_file=repo_root / "chalicelib" / "responders" / "bot.json",
            fulfilment=core.imported_function("lex_fulfilment"),
            fulfilment_name_ref=core.function_name_ref("lex_fulfilment"),
        )

    def _webhook_access_logs(self) -> logs.LogGroup:
        """The webhook API's access log, and the account setting API Gateway needs before
        it may write any log to CloudWatch (one per account and region)."""
        role = iam.Role(
            self,
            "ApiGatewayLogsRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                )
            ],
        )
        # Kept when the stack goes: the account setting would otherwise name a deleted role,
        # and every API of the account would stop logging.
        role.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        account = apigateway.CfnAccount(
            self, "ApiGatewayAccount", cloud_watch_role_arn=role.role_arn
        )
        self.apps["ingress"].chalice.get_resource("RestAPI").add_dependency(account)
        return logs.LogGroup(self, "WebhookAccessLogs", retention=LOG_RETENTION)

    # --- what the apps feed ---------------------------------------------------------------

    def _analysis_workflow(self) -> AnalysisWorkflow:
        """The core app's analysis steps as a state machine, started by each
        MESSAGE_RECEIVED on the bus."""
        core = self.apps["core"]
        analysis = AnalysisWorkflow(
            self,
            "Analysis",
            functions={name: core.imported_function(name) for name in ANALYSIS_STEPS},
            log_retention=LOG_RETENTION,
        )
        events.Rule(
            self,
            "StartAnalysis",
            event_bus=self.spine.bus,
            description="Each MESSAGE_RECEIVED starts the analysis workflow",
            event_pattern=events.EventPattern(
                source=[contract.INGRESS], detail_type=[contract.MessageReceived.DETAIL_TYPE]
            ),
            targets=[
                targets.SfnStateMachine(
                    analysis.state_machine,
                    dead_letter_queue=self.rule_dead_letters,
                    retry_attempts=8,
                    max_event_age=cdk.Duration.hours(1),
                )
            ],
        )
        self._report_stopped_executions(analysis)
        return analysis

    def _report_stopped_executions(self, analysis: AnalysisWorkflow) -> None:
        """An execution that ends without publishing (timed out, aborted, or failed where
        no Catch applies) still reports: Step Functions logs its ending to the state
        machine's log group, and a subscription filter hands it to core's
        analysis_stopped, which publishes MESSAGE_ANALYSIS_FAILED for the message the
        execution recorded at its start (chalicelib/analysis/endings.py).

        Not the "Step Functions Execution Status Change" event on EventBridge: AWS sends
        it for Standard workflows only, and this one is Express. The log works for both
        types, so one path serves whichever the machine is; a second, status-change path
        would only ever run in an emulator that sends those events for Express too."""
        logs.SubscriptionFilter(
            self,
            "AnalysisEndings",
            log_group=analysis.log_group,
            destination=logs_destinations.LambdaDestination(
                self.apps["core"].imported_function("analysis_stopped")
            ),
            filter_pattern=logs.FilterPattern.any(
                *(logs.FilterPattern.string_value("$.type", "=", ending) for ending in ENDINGS)
            ),
        )

    def _data_lake(self, repo_root: Path) -> DataLake:
        return DataLake(
            self,
            "Lake",
            bus=self.spine.bus,
            detail_model=contract.MessageAnalysed,
            queries_dir=repo_root / "queries",
            access_logs=self.access_logs,
            dead_letters=self.rule_dead_letters,
            log_retention=LOG_RETENTION,
        )

    def _alarms_and_dashboard(self) -> dict[str, cloudwatch.Alarm]:
        return alarms_and_dashboard(
            self,
            machine=self.analysis.state_machine,
            spine=self.spine,
            send_tweet_name=self.apps["egress"].function_name_ref("send_tweet"),
            dead_letter_queues={
                "RuleDeadLetters": self.rule_dead_letters,
                "LambdaDeadLetters": self.lambda_dead_letters,
            },
            topic=self.topic,
        )

    def _outputs(self) -> None:
        """The names and ARNs deploying and running Magpie need, and each function's role
        (`<App><Function>RoleArn`)."""
        ingress = self.apps["ingress"]
        rest_api = ingress.chalice.get_resource("RestAPI")
        outputs = {
            "WebhookUrl": cdk.Fn.sub(
                "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/prod/twitter",
                {"Api": rest_api.ref},
            ),
            "EventBusName": self.spine.bus.event_bus_name,
            "MediaBucketName": self.media.bucket_name,
            "IdempotencyTableName": self.idempotency.table_name,
            "AlertTopicArn": self.topic.topic_arn,
            "AlertWebhookSecretArn": self.webhook_secret.secret_arn,
            **(
                {
                    "LexBotId": self.lex.bot_id,
                    "LexBotAliasId": self.lex.alias_id,
                    "LexLocaleId": self.lex.locales[0],
                }
                if self.lex is not None
                else {}
            ),
            **({"FacesBucketName": self.faces.bucket_name} if self.faces is not None else {}),
            "StateMachineArn": self.analysis.state_machine.state_machine_arn,
            "DataLakeBucketName": self.lake.bucket.bucket_name,
            "AthenaWorkGroup": self.lake.workgroup.ref,
            "GlueDatabase": self.lake.database.ref,
        }
        for key, app in self.apps.items():
            for name, role in app.roles.items():
                outputs[_output_id(key, name)] = role.role_arn
        for key, value in outputs.items():
            cdk.CfnOutput(self, key, value=value)
