"""The reference design's bill, from its call plan (makit/aws-serverless-twitter-bot).

Nothing of the reference runs here: its plan is read off its CDK stacks and priced with the
same table and latency model as Magpie's measured run.

* Ingress: a REST API and one Node.js Lambda (128 MB) that logs the whole API Gateway event
  twice, checks the signature and puts the raw event plus MESSAGE_RECEIVED in one PutEvents.
* Analysis: a *Standard* state machine per MESSAGE_RECEIVED:
    Parallel "Analyse Text and Images"
      branch 1: Parallel "Analyse Text" -> DetectEntities | DetectSentiment (SDK tasks)
      branch 2: Choice "Contain Image(s)?" -> Pass "No Images"
                                           -> "Download Images to S3" (Lambda) -> Map
                                              -> per photo: Parallel "Analyse Image" ->
                                                 DetectLabels | DetectText | RecognizeCelebrities
    -> "Push Result" (PutEvents SDK task)
  Standard bills every state entered: 7 transitions for a text message, 8 + 4 per photo.
* Responding: text -> a Lambda calling Lex V2 (RecognizeText; Lex calls the fulfilment
  Lambda), images -> a 256 MB Lambda drawing names with GraphicsMagick; each puts SEND_TWEET.
* Egress: a Lambda posting the reply (and uploading the annotated photo) to X.
* Plumbing: every event archived, logged to CloudWatch Logs by a catch-all rule, and sent to
  Firehose; NEGATIVE messages to SNS (email).

As coded, the reference analyses only the first photo of a post (entities.media) and makes
no MESSAGE_RECEIVED for direct messages; this plan prices what its README describes (every
photo of every message), so both designs answer the same corpus.

Lambda durations of the reference (Node.js) are ASSUMED (REFERENCE_OWN_MS): its own work in
ms at its memory size, plus the modelled wait for each call it makes (bench/latency.json).
"""

from __future__ import annotations

from typing import Any

from bench import pricing
from bench.meter import billed_ms, modelled_latency_ms

# Memory (MB) and own compute (ms) of the reference's Lambdas: CDK defaults (128 MB) except
# process-images (256 MB). Own compute is an assumption for small Node.js handlers.
REFERENCE_LAMBDAS: dict[str, dict[str, Any]] = {
    "ingress": {"memory_mb": 128, "own_ms": 15},
    "download_images": {"memory_mb": 128, "own_ms": 10, "own_ms_per_photo": 20},
    "chat_bot": {"memory_mb": 128, "own_ms": 10},
    "chat_bot_fulfilment": {"memory_mb": 128, "own_ms": 3},
    "process_images": {"memory_mb": 256, "own_ms": 20, "own_ms_per_photo": 250},
    "tweet": {"memory_mb": 128, "own_ms": 20},
    "transform_records": {"memory_mb": 128, "own_ms": 20},
}
FIREHOSE_BATCH = 200  # records per transform-Lambda invocation (60 s / 1 MB buffer)
LOG_BYTES_PER_INVOCATION = 1024  # a few console.info lines of JSON each
RAW_EVENT_BYTES = 4500  # a tweet_create_events item as X sends it (our corpus items are slimmer)


def standard_transitions(photos: int) -> int:
    """States the reference's Standard workflow enters for a message with `photos` photos."""
    text_branch = 3  # Parallel "Analyse Text", DetectEntities, DetectSentiment
    # Choice + Pass "No Images"; or Choice, Download, Map and per photo Parallel + 3 tasks.
    image_branch = 2 if photos == 0 else 3 + 4 * photos
    return 1 + text_branch + image_branch + 1  # outer Parallel ... Push Result


def _lambda(usage: dict[str, Any], name: str, own_ms: float, calls: list[tuple[str, str]]) -> int:
    spec = REFERENCE_LAMBDAS[name]
    wait = sum(modelled_latency_ms(service, operation) for service, operation in calls)
    # The reference's own compute is assumed at its memory size already: no CPU scaling.
    billed = billed_ms(own_ms, wait, 1769)
    pricing.add_lambda(usage, f"reference.{name}", spec["memory_mb"], billed)
    usage["log_bytes"] += LOG_BYTES_PER_INVOCATION + 260
    return billed


def _event(usage: dict[str, Any], size: int) -> None:
    usage["eventbridge_events"] += pricing.eventbridge_chunks(size)
    usage["eventbridge_archive_bytes"] += size
    usage["firehose_billed_bytes"] += pricing.firehose_billed_bytes(size + 1)
    usage["log_bytes"] += size  # the catch-all rule logs every event


def reference_usage(messages: list[dict[str, Any]], negative: int | None = None) -> dict[str, Any]:
    """Usage of the reference design for these corpus messages (see the module docstring).

    `negative`: how many raise an alert (default: the corpus's NEGATIVE messages)."""
    usage = pricing.empty_usage(len(messages))
    events = 0
    for message in messages:
        photos = len(message["images"])
        text = message["text"]
        usage["api_gateway_rest_requests"] += 1
        body = RAW_EVENT_BYTES + 350 * photos
        _lambda(usage, "ingress", REFERENCE_LAMBDAS["ingress"]["own_ms"], [("events", "PutEvents")])
        usage["log_bytes"] += 2 * (body + 1500)  # console.info of the whole event, twice
        _event(usage, body)
        _event(usage, 300 + len(text.encode()) + 60 * photos)  # MESSAGE_RECEIVED
        usage["standard_transitions"] += standard_transitions(photos)
        for operation in ("DetectEntities", "DetectSentiment"):
            pricing.add_count(usage, "comprehend_requests", operation)
            pricing.add_count(
                usage, "comprehend_units", operation, pricing.comprehend_units(len(text))
            )
        analysed = 600 + len(text.encode())
        if photos:
            spec = REFERENCE_LAMBDAS["download_images"]
            own = spec["own_ms"] + spec["own_ms_per_photo"] * photos
            _lambda(
                usage, "download_images", own, [("cdn", "GET photo"), ("s3", "PutObject")] * photos
            )
            usage["s3_put"] += photos
            for operation in ("DetectLabels", "DetectText", "RecognizeCelebrities"):
                pricing.add_count(usage, "rekognition_images", operation, photos)
            usage["s3_get"] += 3 * photos  # Rekognition reads each photo from S3 per call
            analysed += 900 * photos
        _event(usage, analysed)  # MESSAGE_ANALYSED
        if photos:
            spec = REFERENCE_LAMBDAS["process_images"]
            own = spec["own_ms"] + spec["own_ms_per_photo"] * photos
            calls = [("s3", "GetObject"), ("s3", "PutObject")] * photos + [("events", "PutEvents")]
            _lambda(usage, "process_images", own, calls)
            usage["s3_get"] += photos
            usage["s3_put"] += photos
        else:
            fulfilment = _lambda(
                usage, "chat_bot_fulfilment", REFERENCE_LAMBDAS["chat_bot_fulfilment"]["own_ms"], []
            )
            usage["lex_text_requests"] += 1
            calls = [("lexv2-runtime", "RecognizeText"), ("events", "PutEvents")]
            own = REFERENCE_LAMBDAS["chat_bot"]["own_ms"] + fulfilment
            _lambda(usage, "chat_bot", own, calls)
        _event(usage, 400)  # SEND_TWEET
        x_calls = [("x", "POST /2/tweets")]
        if photos:
            x_calls = [("s3", "GetObject"), ("x", "POST /2/media/upload")] * photos + x_calls
            usage["s3_get"] += photos
        _lambda(usage, "tweet", REFERENCE_LAMBDAS["tweet"]["own_ms"], x_calls)
        events += 4
    for _ in range(max(1, round(events / FIREHOSE_BATCH))):
        _lambda(usage, "transform_records", REFERENCE_LAMBDAS["transform_records"]["own_ms"], [])
    alerts = (
        negative if negative is not None else sum(m["sentiment"] == "NEGATIVE" for m in messages)
    )
    usage["sns_publishes"] += alerts
    usage["sns_emails"] += alerts
    return usage


def readme_assumption_messages(count: int = 1000) -> list[dict[str, Any]]:
    """The reference README's own assumption: 50/50 text and image messages, one photo each,
    tweet-sized text."""
    text = "@bot " + "x" * 95
    return [
        {"text": text, "images": [{"scene": "celebrity"}] if i % 2 else [], "sentiment": "NEUTRAL"}
        for i in range(count)
    ]


def reference_bill(messages: list[dict[str, Any]]) -> dict[str, Any]:
    usage = reference_usage(messages)
    return {"usage": usage, "bill": pricing.price(usage)}
