"""What each function must get from the stack (shared by the template and config tests).

Values name the stack output (or `param:<Parameter>`) the variable must equal, or give the
literal value as `value:<value>`.
"""

EXPECTED_ENVIRONMENT = {
    "download_media": {
        "MEDIA_BUCKET": "MediaBucketName",
        "IDEMPOTENCY_TABLE": "IdempotencyTableName",
    },
    "analyse_text": {"TEXT_PROVIDER": "param:TextProvider"},
    "analyse_image": {
        "MEDIA_BUCKET": "MediaBucketName",
        "REKOGNITION_COLLECTION_ID": "param:RekognitionCollectionId",
        "IMAGE_PROVIDER": "param:ImageProvider",
    },
    "publish_analysis": {
        "EVENT_BUS_NAME": "EventBusName",
        "IDEMPOTENCY_TABLE": "IdempotencyTableName",
    },
    "publish_analysis_failed": {
        "EVENT_BUS_NAME": "EventBusName",
        "IDEMPOTENCY_TABLE": "IdempotencyTableName",
    },
    "analysis_stopped": {
        "EVENT_BUS_NAME": "EventBusName",
        "IDEMPOTENCY_TABLE": "IdempotencyTableName",
    },
    "lex_fulfilment": {},
    "forward_alert": {"ALERT_WEBHOOK_SECRET_ID": "AlertWebhookSecretArn"},
    **{
        f"alert_{name}": {
            "ALERT_TOPIC_ARN": "AlertTopicArn",
            "IDEMPOTENCY_TABLE": "IdempotencyTableName",
        }
        for name in ("negative", "analysis_failed", "reply_failed")
    },
    "api_handler": {
        "EVENT_BUS_NAME": "EventBusName",
        "IDEMPOTENCY_TABLE": "IdempotencyTableName",
        "TWITTER_SECRET_ID": "param:TwitterCredentialsName",
        "TWITTER_BOT_USER_ID": "param:TwitterBotUserId",
    },
    "text_responder": {
        "EVENT_BUS_NAME": "EventBusName",
        "LEX_BOT_ID": "LexBotId",
        "LEX_BOT_ALIAS_ID": "LexBotAliasId",
        "LEX_LOCALE_ID": "LexLocaleId",
        "CONVERSATION_PROVIDER": "param:ConversationProvider",
    },
    "image_responder": {"EVENT_BUS_NAME": "EventBusName", "MEDIA_BUCKET": "MediaBucketName"},
    "send_tweet": {
        "EVENT_BUS_NAME": "EventBusName",
        "IDEMPOTENCY_TABLE": "IdempotencyTableName",
        "TWITTER_SECRET_ID": "param:TwitterCredentialsName",
        "TWITTER_BOT_USER_ID": "param:TwitterBotUserId",
        "MEDIA_BUCKET": "MediaBucketName",
        "ALERT_TOPIC_ARN": "AlertTopicArn",
        "X_API_BASE_URL": "param:XApiBaseUrl",
        "X_DAILY_BUDGET_USD": "param:XDailyBudgetUsd",
    },
}

# The lite profile: local models in the analysis functions, no Lex (infra/magpie_stack/lite.py).
EXPECTED_LITE_ENVIRONMENT = {
    **EXPECTED_ENVIRONMENT,
    "analyse_text": {"TEXT_PROVIDER": "value:local", "MAGPIE_HOME": "value:/tmp/magpie"},
    "analyse_image": {
        "MEDIA_BUCKET": "MediaBucketName",
        "IMAGE_PROVIDER": "value:local",
        "MAGPIE_HOME": "value:/tmp/magpie",
        "FACE_GALLERY_BUCKET": "FacesBucketName",
    },
    "text_responder": {"EVENT_BUS_NAME": "EventBusName", "CONVERSATION_PROVIDER": "value:local"},
}
