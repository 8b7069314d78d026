"""Each function's environment and permissions, app by app.

ChaliceApp.give_role gives every function a role of its own that may only write its own
logs; the steps here add the variables each function's code reads and the actions it calls,
on the resources it calls them on, and nothing else. Then each `on_cw_event` rule moves onto
the bus and only the functions named in `publishers` may put events on it
(docs/ARCHITECTURE.md, "The event contract").

Nothing here makes a construct in a scope of its own: statements go into each role's default
policy and overrides onto Chalice's resources, so no logical id depends on this module.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from chalicelib import events as contract
from chalicelib.alerts import ALERT_PATTERNS
from magpie_stack.budget import STEP_TIMEOUT_SECONDS
from magpie_stack.chalice_apps import ChaliceApp
from magpie_stack.lex import LexBot
from magpie_stack.lite import FACE_GALLERY_KEY, LITE_FUNCTIONS, LITE_RESPONDER_ENVIRONMENT
from magpie_stack.parameters import provider_environment

if TYPE_CHECKING:
    from magpie_stack.parts import StackParts

TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
]
COMPREHEND_ACTIONS = [
    "comprehend:DetectDominantLanguage",
    "comprehend:DetectSentiment",
    "comprehend:BatchDetectSentiment",
    "comprehend:DetectEntities",
    "comprehend:DetectKeyPhrases",
]
# The webhook's limits: X delivers a bot's activity at a few requests a second; a webhook
# call takes milliseconds, so ten at once serve hundreds a second.
WEBHOOK_RATE_PER_SECOND = 50
WEBHOOK_BURST = 100
INGRESS_CONCURRENCY = 10
# One JSON line per request: who, what, the answer, and how long it took; never a body.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTimeEpoch",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
    },
    separators=(",", ":"),
)
REKOGNITION_ACTIONS = [
    "rekognition:DetectLabels",
    "rekognition:DetectText",
    "rekognition:DetectModerationLabels",
    "rekognition:RecognizeCelebrities",
]


def allow(app: ChaliceApp, name: str, actions: list[str], resources: list[str]) -> None:
    """One more statement in the role of the app's function `name`."""
    app.roles[name].add_to_policy(iam.PolicyStatement(actions=actions, resources=resources))


def publishes(stack: StackParts, app: str, name: str, source: str) -> iam.IRole:
    """Let the app's function `name` put events with `source` on the bus; returns its role."""
    role = stack.apps[app].roles[name]
    stack.spine.grant_put(role, source)
    return role


def bus_environment(stack: StackParts) -> dict[str, str]:
    return {"EVENT_BUS_NAME": stack.spine.bus.event_bus_name}


def media_objects(stack: StackParts) -> str:
    """The downloaded media (`media/`, expiring after MEDIA_EXPIRY_DAYS)."""
    return stack.media.arn_for_objects("media/*")


def annotated_objects(stack: StackParts) -> str:
    """The annotated photos that replies attach (`annotated/`)."""
    return stack.media.arn_for_objects("annotated/*")


# --- core: the analysis steps, the alert fan-out, Lex fulfilment --------------------------


def core(stack: StackParts) -> None:
    """Everything of the core app but analyse_text and analyse_image (which depend on the
    profile: full_analysis, lite_analysis)."""
    app, bus_env = stack.apps["core"], bus_environment(stack)
    # download_media records which message each execution analyses (one PutItem), for an
    # ending that only the state machine's log reports (analysis_stopped reads it).
    app.set_environment(
        "download_media",
        {
            "MEDIA_BUCKET": stack.media.bucket_name,
            "IDEMPOTENCY_TABLE": stack.idempotency.table_name,
        },
    )
    allow(app, "download_media", ["s3:PutObject"], [media_objects(stack)])
    allow(app, "download_media", ["dynamodb:PutItem"], [stack.idempotency.table_arn])
    # One analysis ending per message, whichever of the three proposes it first: each
    # claims it in the idempotency table (chalicelib/analysis/ending.py).
    for name in ("publish_analysis", "publish_analysis_failed", "analysis_stopped"):
        app.set_environment(name, {**bus_env, "IDEMPOTENCY_TABLE": stack.idempotency.table_name})
        allow(app, name, TABLE_ACTIONS, [stack.idempotency.table_arn])
    app.set_async_dead_letter_queue("analysis_stopped", stack.lambda_dead_letters.queue_arn)
    app.set_environment("lex_fulfilment", {})
    alert_functions(stack)
    app.set_environment(
        "forward_alert", {"ALERT_WEBHOOK_SECRET_ID": stack.webhook_secret.secret_arn}
    )
    stack.webhook_secret.grant_read(app.roles["forward_alert"])
    app.subscribe_to_topic(
        "forward_alert", stack.topic.topic_arn, stack.lambda_dead_letters.queue_arn
    )
    app.set_async_dead_letter_queue("forward_alert", stack.lambda_dead_letters.queue_arn)


def alert_functions(stack: StackParts) -> None:
    """The alert functions (app.py's `alert_<rule>`, one per ALERT_PATTERNS rule, moved onto
    the bus with the other rules): each claims its alert in the idempotency table and
    publishes it to the encrypted topic, so a redelivered or replayed event e-mails no
    second alert."""
    app = stack.apps["core"]
    for name in (f"alert_{rule}" for rule in ALERT_PATTERNS):
        app.set_environment(
            name,
            {
                "ALERT_TOPIC_ARN": stack.topic.topic_arn,
                "IDEMPOTENCY_TABLE": stack.idempotency.table_name,
            },
        )
        allow(app, name, TABLE_ACTIONS, [stack.idempotency.table_arn])
        allow(app, name, ["sns:Publish"], [stack.topic.topic_arn])
        allow(app, name, ["kms:GenerateDataKey", "kms:Decrypt"], [stack.alerts_key.key_arn])


def step_timeouts(stack: StackParts) -> None:
    """Each analysis step's Lambda times out with its task (budget.py): an attempt the
    state machine gave up on is not left running beside its retry."""
    app = stack.apps["core"]
    for name, seconds in STEP_TIMEOUT_SECONDS.items():
        app.function_resource(name).add_property_override("Timeout", seconds)


def full_analysis(stack: StackParts) -> None:
    """analyse_text calls Comprehend; analyse_image reads the media and calls Rekognition,
    searching faces only in the configured collection."""
    app = stack.apps["core"]
    app.set_environment("analyse_text", provider_environment(stack.params, "TEXT_PROVIDER"))
    allow(app, "analyse_text", COMPREHEND_ACTIONS, ["*"])
    app.set_environment(
        "analyse_image",
        {
            "MEDIA_BUCKET": stack.media.bucket_name,
            "REKOGNITION_COLLECTION_ID": _collection_id(stack),
            **provider_environment(stack.params, "IMAGE_PROVIDER"),
        },
    )
    allow(app, "analyse_image", ["s3:GetObject"], [media_objects(stack)])
    allow(app, "analyse_image", REKOGNITION_ACTIONS, ["*"])
    allow(app, "analyse_image", ["rekognition:SearchFacesByImage"], [_collection_arn(stack)])


def _collection_id(stack: StackParts) -> str:
    assert stack.params.collection_id is not None  # declared in full
    return stack.params.collection_id.value_as_string


def _collection_arn(stack: StackParts) -> str:
    """The configured collection's ARN, or one that names no collection when none is."""
    assert stack.params.has_collection is not None  # declared in full
    return cdk.Token.as_string(
        cdk.Fn.condition_if(
            stack.params.has_collection.logical_id,
            stack.format_arn(
                service="rekognition",
                resource="collection",
                resource_name=_collection_id(stack),
            ),
            stack.format_arn(
                service="rekognition",
                resource="collection",
                resource_name="no-collection-configured",
            ),
        )
    )


def lite_analysis(stack: StackParts, image: ecr_assets.DockerImageAsset) -> None:
    """analyse_text and analyse_image as container-image functions with the local
    models: no Comprehend or Rekognition permission; the image step reads the media
    and the one gallery object of the faces bucket."""
    app, faces = stack.apps["core"], stack.faces
    assert faces is not None  # lite has a faces bucket
    for name, spec in LITE_FUNCTIONS.items():
        app.use_container_image(
            name,
            image_uri=image.image_uri,
            command=spec["command"],
            memory_mb=spec["memory_mb"],
            timeout_seconds=spec["timeout_seconds"],
            architecture=spec["architecture"],
        )
    app.set_environment("analyse_text", LITE_FUNCTIONS["analyse_text"]["environment"])
    app.set_environment(
        "analyse_image",
        {
            **LITE_FUNCTIONS["analyse_image"]["environment"],
            "MEDIA_BUCKET": stack.media.bucket_name,
            "FACE_GALLERY_BUCKET": faces.bucket_name,
        },
    )
    app.unset_environment("analyse_image", ["REKOGNITION_COLLECTION_ID"])
    allow(
        app,
        "analyse_image",
        ["s3:GetObject"],
        [media_objects(stack), faces.arn_for_objects(FACE_GALLERY_KEY)],
    )
    # Without ListBucket, S3 answers a GetObject of a missing key with 403, not 404: the
    # gallery before anyone is enrolled would read as a failure, not as "nobody known".
    # The bucket holds only the gallery, so listing it reveals nothing more.
    allow(app, "analyse_image", ["s3:ListBucket"], [faces.bucket_arn])


# --- ingress: the webhook ---------------------------------------------------------------


def ingress(stack: StackParts, powertools: lambda_.ILayerVersion) -> None:
    """The webhook: the idempotency table, the X credentials, Powertools from a layer."""
    app = stack.apps["ingress"]
    app.set_environment(
        "api_handler",
        {
            **bus_environment(stack),
            "IDEMPOTENCY_TABLE": stack.idempotency.table_name,
            "TWITTER_SECRET_ID": stack.params.secret_name.value_as_string,
            "TWITTER_BOT_USER_ID": stack.params.bot_user_id.value_as_string,
        },
    )
    # Powertools from a layer keeps ingress's own package under 1 MB.
    app.function_resource("api_handler").add_property_override(
        "Layers", [powertools.layer_version_arn]
    )
    allow(app, "api_handler", TABLE_ACTIONS, [stack.idempotency.table_arn])
    allow(app, "api_handler", ["secretsmanager:GetSecretValue"], [stack.twitter_secret.secret_arn])


def webhook_limits(stack: StackParts, access_logs: logs.ILogGroup) -> None:
    """A flood of deliveries (a retry storm, or anyone who found the URL) must not run up
    cost: the API's stage answers 429 above WEBHOOK_RATE_PER_SECOND (bursts to
    WEBHOOK_BURST) and logs every request; ingress never runs more than
    INGRESS_CONCURRENCY at once. X retries what was refused."""
    rest_api = stack.apps["ingress"].chalice.get_resource("RestAPI")
    rest_api.add_property_override(
        "MethodSettings",
        [
            {
                "ResourcePath": "/*",
                "HttpMethod": "*",
                "ThrottlingRateLimit": WEBHOOK_RATE_PER_SECOND,
                "ThrottlingBurstLimit": WEBHOOK_BURST,
            }
        ],
    )
    rest_api.add_property_override(
        "AccessLogSetting",
        {"DestinationArn": access_logs.log_group_arn, "Format": ACCESS_LOG_FORMAT},
    )
    stack.apps["ingress"].function_resource("api_handler").add_property_override(
        "ReservedConcurrentExecutions", INGRESS_CONCURRENCY
    )


# --- responders -------------------------------------------------------------------------


def responders(stack: StackParts, lex: LexBot | None) -> None:
    """text_responder asks the Lex bot, or (lite, no bot) matches the intents itself;
    image_responder reads the media and writes the annotated photos."""
    app, bus_env = stack.apps["responders"], bus_environment(stack)
    if lex is None:
        app.set_environment("text_responder", {**bus_env, **LITE_RESPONDER_ENVIRONMENT})
        app.unset_environment("text_responder", ["LEX_BOT_ID", "LEX_BOT_ALIAS_ID", "LEX_LOCALE_ID"])
    else:
        app.set_environment(
            "text_responder",
            {
                **bus_env,
                "LEX_BOT_ID": lex.bot_id,
                "LEX_BOT_ALIAS_ID": lex.alias_id,
                "LEX_LOCALE_ID": lex.locales[0],
                **provider_environment(stack.params, "CONVERSATION_PROVIDER"),
            },
        )
        allow(app, "text_responder", ["lex:RecognizeText"], [lex.alias_arn])
    app.set_environment("image_responder", {**bus_env, "MEDIA_BUCKET": stack.media.bucket_name})
    allow(app, "image_responder", ["s3:GetObject"], [media_objects(stack)])
    allow(app, "image_responder", ["s3:PutObject"], [annotated_objects(stack)])


# --- egress -----------------------------------------------------------------------------


def egress(stack: StackParts) -> None:
    """send_tweet: the X credentials, the annotated photos, the idempotency table, and the
    alert topic."""
    app = stack.apps["egress"]
    app.set_environment(
        "send_tweet",
        {
            **bus_environment(stack),
            "IDEMPOTENCY_TABLE": stack.idempotency.table_name,
            "TWITTER_SECRET_ID": stack.params.secret_name.value_as_string,
            "TWITTER_BOT_USER_ID": stack.params.bot_user_id.value_as_string,
            "MEDIA_BUCKET": stack.media.bucket_name,
            "ALERT_TOPIC_ARN": stack.topic.topic_arn,
            "X_API_BASE_URL": stack.params.x_api_base_url.value_as_string,
            "X_DAILY_BUDGET_USD": stack.params.x_daily_budget.value_as_string,
        },
    )
    allow(app, "send_tweet", TABLE_ACTIONS, [stack.idempotency.table_arn])
    allow(app, "send_tweet", ["secretsmanager:GetSecretValue"], [stack.twitter_secret.secret_arn])
    allow(app, "send_tweet", ["s3:GetObject"], [annotated_objects(stack)])
    allow(app, "send_tweet", ["sns:Publish"], [stack.topic.topic_arn])
    # The topic is encrypted: publishing encrypts with its key.
    allow(app, "send_tweet", ["kms:GenerateDataKey", "kms:Decrypt"], [stack.alerts_key.key_arn])


# --- the bus ----------------------------------------------------------------------------


def rules_onto_bus(stack: StackParts) -> None:
    """Every on_cw_event rule onto the bus; every function they trigger dead-letters."""
    for app in stack.apps.values():
        for name in app.function_names:
            if app.move_rules_to_bus(
                name, stack.spine.bus.event_bus_name, stack.rule_dead_letters.queue_arn
            ):
                app.set_async_dead_letter_queue(name, stack.lambda_dead_letters.queue_arn)


def publishers(stack: StackParts) -> dict[str, list[iam.IRole]]:
    """Who may publish what: each role may put events with its own source (chalicelib/events.py)
    only; EventSpine.restrict_publishers denies everyone else."""
    return {
        contract.INGRESS: [publishes(stack, "ingress", "api_handler", contract.INGRESS)],
        contract.ANALYSIS: [
            publishes(stack, "core", "publish_analysis", contract.ANALYSIS),
            publishes(stack, "core", "publish_analysis_failed", contract.ANALYSIS),
            publishes(stack, "core", "analysis_stopped", contract.ANALYSIS),
        ],
        contract.RESPONDERS: [
            publishes(stack, "responders", "text_responder", contract.RESPONDERS),
            publishes(stack, "responders", "image_responder", contract.RESPONDERS),
        ],
        contract.EGRESS: [publishes(stack, "egress", "send_tweet", contract.EGRESS)],
    }
