"""MagpieStack: all of Magpie in one CloudFormation stack.

The four Chalice apps come in through `chalice.cdk.Chalice` (chalice_apps.py); this stack
adds what Chalice cannot declare: the custom bus and who may publish on it, the archive,
logs, metrics, dashboard and alarms, the analysis state machine, the alert topic and its
rules, the Lex bot, the buckets, the idempotency table, the data lake, the dead-letter
queues, and one least-privilege role per function.

`profile` (CDK context `magpie:profile`) picks the AI providers: `full` (default) uses
Comprehend, Rekognition and Lex; `lite` runs the local models in container-image functions
and deploys no Lex bot (lite.py).
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from chalicelib import events as contract
from chalicelib.alerts import ALERT_PATTERNS
from magpie_stack import nag
from magpie_stack.analysis import AnalysisWorkflow
from magpie_stack.bus import BUS_NAME, DETAIL_TYPES, EventSpine
from magpie_stack.chalice_apps import ChaliceApp
from magpie_stack.lake import DataLake, secure_bucket
from magpie_stack.layers import powertools_layer
from magpie_stack.lex import LexBot
from magpie_stack.lite import (
    DEFAULT_PROFILE,
    FACE_GALLERY_KEY,
    LITE_FUNCTIONS,
    LITE_RESPONDER_ENVIRONMENT,
    resolve_profile,
    stage_docker_context,
)

LOG_RETENTION = logs.RetentionDays.ONE_MONTH
ALERT_TOPIC_NAME = "magpie-alerts"  # the core app's on_sns_message(topic=...) names it too
MEDIA_EXPIRY_DAYS = 1
ANALYSIS_STEPS = (
    "download_media",
    "analyse_text",
    "analyse_image",
    "publish_analysis",
    "publish_analysis_failed",
)
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
        lite = self.profile == "lite"
        self.template_options.description = (
            "Magpie: a serverless, event-driven bot for X (four Chalice apps on one bus)"
        )

        # --- parameters -------------------------------------------------------------------
        alert_email = cdk.CfnParameter(
            self,
            "AlertEmail",
            type="String",
            description="E-mail address that receives Magpie's alerts (confirm the "
            "subscription e-mail SNS sends)",
            allowed_pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
            constraint_description="an e-mail address",
        )
        bot_user_id = cdk.CfnParameter(
            self,
            "TwitterBotUserId",
            type="String",
            description="The bot's own numeric X user id",
            allowed_pattern=r"^[0-9]+$",
            constraint_description="a numeric X user id",
        )
        secret_name = cdk.CfnParameter(
            self,
            "TwitterCredentialsName",
            type="String",
            default="TwitterSecret",
            description="Name of the Secrets Manager secret holding the X keys {ApiKey, "
            "ApiSecret, AccessToken, AccessTokenSecret} (created by hand, never by the stack)",
        )
        webhook_url = cdk.CfnParameter(
            self,
            "AlertWebhookUrl",
            type="String",
            default="",
            no_echo=True,
            description="Optional Slack-compatible webhook that alerts are forwarded to",
        )
        if not lite:  # lite matches faces against its own gallery, not a collection
            collection_id = cdk.CfnParameter(
                self,
                "RekognitionCollectionId",
                type="String",
                default="",
                allowed_pattern=r"^[a-zA-Z0-9_.\-]*$",
                description="Optional Rekognition face collection of known people",
            )
            has_collection = cdk.CfnCondition(
                self,
                "HasCollection",
                expression=cdk.Fn.condition_not(
                    cdk.Fn.condition_equals(collection_id.value_as_string, "")
                ),
            )

        # --- dead letters, storage --------------------------------------------------------
        self.rule_dead_letters = sqs.Queue(
            self,
            "RuleDeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.lambda_dead_letters = sqs.Queue(
            self,
            "LambdaDeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        # Rules on the Magpie bus (Chalice's and the stack's) may dead-letter here.
        self.rule_dead_letters.add_to_resource_policy(
            iam.PolicyStatement(
                sid="RulesOnTheMagpieBus",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.rule_dead_letters.queue_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": self.format_arn(
                            service="events", resource="rule", resource_name=f"{BUS_NAME}/*"
                        )
                    }
                },
            )
        )

        self.access_logs = secure_bucket(
            self,
            "AccessLogs",
            lifecycle_rules=[s3.LifecycleRule(id="logs", expiration=cdk.Duration.days(90))],
        )
        self.media = secure_bucket(
            self,
            "Media",
            server_access_logs_bucket=self.access_logs,
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
        self.faces = (
            secure_bucket(
                self,
                "Faces",
                versioned=True,
                server_access_logs_bucket=self.access_logs,
                server_access_logs_prefix="faces/",
            )
            if lite
            else None
        )
        self.idempotency = dynamodb.Table(
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
        twitter_secret = secretsmanager.Secret.from_secret_name_v2(
            self, "TwitterSecret", secret_name.value_as_string
        )

        # --- bus and alerts ---------------------------------------------------------------
        self.spine = EventSpine(
            self, "Events", log_retention=LOG_RETENTION, dead_letters=self.rule_dead_letters
        )
        bus = self.spine.bus
        self.topic = sns.Topic(
            self,
            "Alerts",
            topic_name=ALERT_TOPIC_NAME,
            display_name="Magpie alerts",
            enforce_ssl=True,
        )
        self.topic.add_subscription(subscriptions.EmailSubscription(alert_email.value_as_string))
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": self.format_arn(
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
        self.lambda_dead_letters.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlertSubscription",
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.lambda_dead_letters.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.topic.topic_arn}},
            )
        )

        # --- the four Chalice apps --------------------------------------------------------
        self.apps = {
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
        core, ingress = self.apps["core"], self.apps["ingress"]
        responders, egress = self.apps["responders"], self.apps["egress"]
        for app in self.apps.values():
            for name in app.function_names:
                app.give_role(name)

        media_objects = self.media.arn_for_objects("media/*")
        annotated_objects = self.media.arn_for_objects("annotated/*")
        bus_env = {"EVENT_BUS_NAME": bus.event_bus_name}

        def allow(app: ChaliceApp, name: str, actions: list[str], resources: list[str]) -> None:
            app.roles[name].add_to_policy(iam.PolicyStatement(actions=actions, resources=resources))

        def publishes(app: ChaliceApp, name: str, source: str) -> iam.IRole:
            self.spine.grant_put(app.roles[name], source)
            return app.roles[name]

        table_actions = [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        ]

        # core: the analysis steps, the alert fan-out, Lex fulfilment
        core.set_environment("download_media", {"MEDIA_BUCKET": self.media.bucket_name})
        allow(core, "download_media", ["s3:PutObject"], [media_objects])
        if lite:
            self._lite_analysis(core, repo_root, build_dir, media_objects)
        else:
            core.set_environment("analyse_text", {})
            allow(
                core,
                "analyse_text",
                [
                    "comprehend:DetectDominantLanguage",
                    "comprehend:DetectSentiment",
                    "comprehend:BatchDetectSentiment",
                    "comprehend:DetectEntities",
                    "comprehend:DetectKeyPhrases",
                ],
                ["*"],
            )
            core.set_environment(
                "analyse_image",
                {
                    "MEDIA_BUCKET": self.media.bucket_name,
                    "REKOGNITION_COLLECTION_ID": collection_id.value_as_string,
                },
            )
            allow(core, "analyse_image", ["s3:GetObject"], [media_objects])
            allow(
                core,
                "analyse_image",
                [
                    "rekognition:DetectLabels",
                    "rekognition:DetectText",
                    "rekognition:DetectModerationLabels",
                    "rekognition:RecognizeCelebrities",
                ],
                ["*"],
            )
            core.roles["analyse_image"].add_to_policy(
                iam.PolicyStatement(
                    actions=["rekognition:SearchFacesByImage"],
                    resources=[
                        cdk.Token.as_string(
                            cdk.Fn.condition_if(
                                has_collection.logical_id,
                                self.format_arn(
                                    service="rekognition",
                                    resource="collection",
                                    resource_name=collection_id.value_as_string,
                                ),
                                self.format_arn(
                                    service="rekognition",
                                    resource="collection",
                                    resource_name="no-collection-configured",
                                ),
                            )
                        )
                    ],
                )
            )
        core.set_environment("publish_analysis", bus_env)
        core.set_environment("publish_analysis_failed", bus_env)
        core.set_environment("lex_fulfilment", {})
        core.set_environment("forward_alert", {"ALERT_WEBHOOK_URL": webhook_url.value_as_string})
        core.subscribe_to_topic(
            "forward_alert", self.topic.topic_arn, self.lambda_dead_letters.queue_arn
        )
        core.set_async_dead_letter_queue("forward_alert", self.lambda_dead_letters.queue_arn)

        # ingress: the webhook
        ingress.set_environment(
            "api_handler",
            {
                **bus_env,
                "IDEMPOTENCY_TABLE": self.idempotency.table_name,
                "TWITTER_SECRET_ID": secret_name.value_as_string,
                "TWITTER_BOT_USER_ID": bot_user_id.value_as_string,
            },
        )
        # Powertools from a layer keeps ingress's own package under 1 MB.
        self.powertools = powertools_layer(self, "PowertoolsLayer", build_dir / "layers")
        ingress.function_resource("api_handler").add_property_override(
            "Layers", [self.powertools.layer_version_arn]
        )
        allow(ingress, "api_handler", table_actions, [self.idempotency.table_arn])
        allow(
            ingress, "api_handler", ["secretsmanager:GetSecretValue"], [twitter_secret.secret_arn]
        )

        # Lex, whose alias calls core's lex_fulfilment. lite has no bot: text_responder
        # matches bot.json's intents itself and lex_fulfilment, still deployed with the
        # core app, is never invoked (nothing may invoke it).
        self.lex = (
            None
            if lite
            else LexBot(
                self,
                "Lex",
                bot_file=repo_root / "chalicelib" / "responders" / "bot.json",
                fulfilment=core.imported_function("lex_fulfilment"),
                fulfilment_name_ref=core.function_name_ref("lex_fulfilment"),
            )
        )

        # responders
        if self.lex is None:
            responders.set_environment("text_responder", {**bus_env, **LITE_RESPONDER_ENVIRONMENT})
            responders.unset_environment(
                "text_responder", ["LEX_BOT_ID", "LEX_BOT_ALIAS_ID", "LEX_LOCALE_ID"]
            )
        else:
            responders.set_environment(
                "text_responder",
                {
                    **bus_env,
                    "LEX_BOT_ID": self.lex.bot_id,
                    "LEX_BOT_ALIAS_ID": self.lex.alias_id,
                    "LEX_LOCALE_ID": self.lex.locales[0],
                },
            )
            allow(responders, "text_responder", ["lex:RecognizeText"], [self.lex.alias_arn])
        responders.set_environment(
            "image_responder", {**bus_env, "MEDIA_BUCKET": self.media.bucket_name}
        )
        allow(responders, "image_responder", ["s3:GetObject"], [media_objects])
        allow(responders, "image_responder", ["s3:PutObject"], [annotated_objects])

        # egress
        egress.set_environment(
            "send_tweet",
            {
                **bus_env,
                "IDEMPOTENCY_TABLE": self.idempotency.table_name,
                "TWITTER_SECRET_ID": secret_name.value_as_string,
                "TWITTER_BOT_USER_ID": bot_user_id.value_as_string,
                "MEDIA_BUCKET": self.media.bucket_name,
                "ALERT_TOPIC_ARN": self.topic.topic_arn,
            },
        )
        allow(egress, "send_tweet", table_actions, [self.idempotency.table_arn])
        allow(egress, "send_tweet", ["secretsmanager:GetSecretValue"], [twitter_secret.secret_arn])
        allow(egress, "send_tweet", ["s3:GetObject"], [annotated_objects])
        allow(egress, "send_tweet", ["sns:Publish"], [self.topic.topic_arn])

        # Every on_cw_event rule onto the bus; every function they trigger dead-letters.
        for app in self.apps.values():
            for name in app.function_names:
                if app.move_rules_to_bus(
                    name, bus.event_bus_name, self.rule_dead_letters.queue_arn
                ):
                    app.set_async_dead_letter_queue(name, self.lambda_dead_letters.queue_arn)

        # Who may publish what (DESIGN.md §2).
        self.publishers = {
            contract.INGRESS: [publishes(ingress, "api_handler", contract.INGRESS)],
            contract.ANALYSIS: [
                publishes(core, "publish_analysis", contract.ANALYSIS),
                publishes(core, "publish_analysis_failed", contract.ANALYSIS),
            ],
            contract.RESPONDERS: [
                publishes(responders, "text_responder", contract.RESPONDERS),
                publishes(responders, "image_responder", contract.RESPONDERS),
            ],
            contract.EGRESS: [publishes(egress, "send_tweet", contract.EGRESS)],
        }
        self.spine.restrict_publishers(self.publishers)

        # --- analysis ---------------------------------------------------------------------
        self.analysis = AnalysisWorkflow(
            self,
            "Analysis",
            functions={name: core.imported_function(name) for name in ANALYSIS_STEPS},
            log_retention=LOG_RETENTION,
        )
        events.Rule(
            self,
            "StartAnalysis",
            event_bus=bus,
            description="Each MESSAGE_RECEIVED starts the analysis workflow",
            event_pattern=events.EventPattern(
                source=[contract.INGRESS], detail_type=[contract.MessageReceived.DETAIL_TYPE]
            ),
            targets=[
                targets.SfnStateMachine(
                    self.analysis.state_machine,
                    dead_letter_queue=self.rule_dead_letters,
                    retry_attempts=8,
                    max_event_age=cdk.Duration.hours(1),
                )
            ],
        )

        # --- alerts -----------------------------------------------------------------------
        for key, pattern in ALERT_PATTERNS.items():
            template, fields = ALERT_MESSAGES[key]
            text = template.format(
                **{name: events.EventField.from_path(path) for name, path in fields.items()}
            )
            events.Rule(
                self,
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
                        self.topic,
                        message=events.RuleTargetInput.from_text(text),
                        dead_letter_queue=self.rule_dead_letters,
                        retry_attempts=8,
                        max_event_age=cdk.Duration.hours(1),
                    )
                ],
            )

        # --- data lake --------------------------------------------------------------------
        self.lake = DataLake(
            self,
            "Lake",
            bus=bus,
            detail_model=contract.MessageAnalysed,
            queries_dir=repo_root / "queries",
            access_logs=self.access_logs,
            dead_letters=self.rule_dead_letters,
            log_retention=LOG_RETENTION,
        )

        # --- alarms and dashboard ---------------------------------------------------------
        self._alarms_and_dashboard()
        self._outputs(secret_name)
        nag.suppress(self)

    def _lite_analysis(
        self, core: ChaliceApp, repo_root: Path, build_dir: Path, media_objects: str
    ) -> None:
        """analyse_text and analyse_image as container-image functions with the local
        models: no Comprehend or Rekognition permission; the image step reads the media
        and the one gallery object of the faces bucket."""
        assert self.faces is not None
        # The build context is staged now, built by `cdk deploy` (infra/lite/Dockerfile).
        self.analysis_image = ecr_assets.DockerImageAsset(
            self,
            "LiteAnalysisImage",
            directory=str(stage_docker_context(repo_root, build_dir / "lite-image")),
            platform=ecr_assets.Platform.LINUX_AMD64,
            display_name="Magpie lite analysis (local models)",
        )
        for name, spec in LITE_FUNCTIONS.items():
            core.use_container_image(
                name,
                image_uri=self.analysis_image.image_uri,
                command=spec["command"],
                memory_mb=spec["memory_mb"],
                timeout_seconds=spec["timeout_seconds"],
                architecture=spec["architecture"],
            )
        core.set_environment("analyse_text", LITE_FUNCTIONS["analyse_text"]["environment"])
        core.set_environment(
            "analyse_image",
            {
                **LITE_FUNCTIONS["analyse_image"]["environment"],
                "MEDIA_BUCKET": self.media.bucket_name,
                "FACE_GALLERY_BUCKET": self.faces.bucket_name,
            },
        )
        core.unset_environment("analyse_image", ["REKOGNITION_COLLECTION_ID"])
        core.roles["analyse_image"].add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[media_objects, self.faces.arn_for_objects(FACE_GALLERY_KEY)],
            )
        )
        # Without ListBucket, S3 answers a GetObject of a missing key with 403, not 404: the
        # gallery before anyone is enrolled would read as a failure, not as "nobody known".
        # The bucket holds only the gallery, so listing it reveals nothing more.
        core.roles["analyse_image"].add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.faces.bucket_arn])
        )

    def _alarms_and_dashboard(self) -> None:
        five = cdk.Duration.minutes(5)
        machine = self.analysis.state_machine
        alert = cw_actions.SnsAction(self.topic)
        analysis_failures = cloudwatch.MathExpression(
            label="analysis failures",
            expression="failed + timedout",
            using_metrics={
                "failed": machine.metric_failed(period=five),
                "timedout": machine.metric_timed_out(period=five),
            },
            period=five,
        )
        send_tweet = self.apps["egress"].function_name_ref("send_tweet")
        egress_failures = cloudwatch.MathExpression(
            label="egress failures",
            expression="tweetfailed + errors",
            using_metrics={
                "tweetfailed": self.spine.metric("TWEET_FAILED"),
                "errors": cloudwatch.Metric(
                    namespace="AWS/Lambda",
                    metric_name="Errors",
                    dimensions_map={"FunctionName": send_tweet},
                    statistic="Sum",
                    period=five,
                ),
            },
            period=five,
        )
        self.alarms = {
            "AnalysisFailures": analysis_failures.create_alarm(
                self,
                "AnalysisFailuresAlarm",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description="Analysis executions that failed or timed out",
            ),
            "EgressFailures": egress_failures.create_alarm(
                self,
                "EgressFailuresAlarm",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description="Replies that failed (TWEET_FAILED) or egress errors",
            ),
        }
        for name, queue in (
            ("RuleDeadLetters", self.rule_dead_letters),
            ("LambdaDeadLetters", self.lambda_dead_letters),
        ):
            self.alarms[name] = queue.metric_approximate_number_of_messages_visible(
                period=five,
                statistic="Maximum",
            ).create_alarm(
                self,
                f"{name}Alarm",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"Messages waiting in the {name} queue",
            )
        for alarm in self.alarms.values():
            alarm.add_alarm_action(alert)

        twitter = [d for d in DETAIL_TYPES if d.startswith("TWITTER_")]
        pipeline = [d for d in DETAIL_TYPES if not d.startswith("TWITTER_")]
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name="magpie")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Messages through the pipeline",
                width=12,
                left=[self.spine.metric(d) for d in pipeline],
            ),
            cloudwatch.GraphWidget(
                title="X activity received", width=12, left=[self.spine.metric(d) for d in twitter]
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
            cloudwatch.GraphWidget(
                title="Failures", width=8, left=[analysis_failures, egress_failures]
            ),
            cloudwatch.GraphWidget(
                title="Dead letters",
                width=8,
                left=[
                    self.rule_dead_letters.metric_approximate_number_of_messages_visible(),
                    self.lambda_dead_letters.metric_approximate_number_of_messages_visible(),
                ],
            ),
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms", width=24, alarms=list(self.alarms.values())
            )
        )

    def _outputs(self, secret_name: cdk.CfnParameter) -> None:
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
