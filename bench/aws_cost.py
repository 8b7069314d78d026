"""Cost per message on AWS, measured: the corpus through Magpie's AWS code path under moto.

Every message is delivered to the ingress Lambda as X would (a signed webhook, through the
API Gateway proxy event Chalice reads), and every event that lands on the bus is routed as the
deployed rules would route it:

  MESSAGE_RECEIVED -> the Express workflow: download_media, then analyse_text in parallel with
                      analyse_image per photo (a Map), then publish_analysis (core app);
  MESSAGE_ANALYSED -> the responders' own `on_cw_event` patterns; the alert rules -> SNS;
  SEND_TWEET       -> egress; every event -> Firehose (the lake).

Each handler runs in-process, as its Lambda would, and is timed (bench/meter.py). AWS is moto
(S3, DynamoDB, EventBridge, Secrets Manager, SNS) except what moto lacks: Comprehend,
Rekognition and Lex answer with the corpus's canned shapes through botocore `before-call`
hooks (Lex runs the real fulfilment Lambda, timed as its own invocation). The photo CDN and
the X API are `responses` callbacks. Every request is counted by service and operation and
priced with bench/prices.json (bench/pricing.py).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import re
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from magpie.apps import APP_DIRS

from bench import payloads, pricing, x_bill
from bench.environment import environment_variables
from bench.meter import Meter, latency_model

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
ACCOUNT = "123456789012"
BOT_USER_ID = "1876543210987654321"
CONSUMER_SECRET = "bench-consumer-secret"  # noqa: S105 (a made-up test secret)
ALERT_TOPIC = "magpie-alerts"
LOG_PLATFORM_BYTES = 260  # START, END and REPORT lines Lambda writes per invocation

# name -> settings. "text"/"conversation"/"images" pick the provider inside the Lambdas.
PROFILES: dict[str, dict[str, Any]] = {
    "magpie-default": {
        "label": "Magpie, every capability (shipped defaults)",
        "TEXT_CAPABILITIES": "sentiment,entities,key_phrases,language",
        "IMAGE_CAPABILITIES": "labels,text,faces,moderation",
        "collection": True,
        "text": "comprehend",
        "conversation": "lex",
        "images": "rekognition",
    },
    "same-features": {
        "label": "Magpie, the reference's features "
        "(entities, sentiment; labels, text, celebrities; Lex)",
        "TEXT_CAPABILITIES": "sentiment,entities",
        "IMAGE_CAPABILITIES": "labels,text,faces",
        "collection": False,
        "text": "comprehend",
        "conversation": "lex",
        "images": "rekognition",
    },
    "replies-only": {
        "label": "Magpie, replies only (sentiment; celebrities and known faces; Lex)",
        "TEXT_CAPABILITIES": "sentiment",
        "IMAGE_CAPABILITIES": "faces",
        "collection": True,
        "text": "comprehend",
        "conversation": "lex",
        "images": "rekognition",
    },
    "lite": {
        "label": "Magpie lite, no AI services "
        "(local sentiment, intents and dlib faces with the known-faces gallery in Lambda)",
        "TEXT_CAPABILITIES": "sentiment",
        "IMAGE_CAPABILITIES": "faces",
        "collection": False,
        "text": "local",
        "conversation": "local",
        "images": "local",
    },
    "lite-rekognition-faces": {
        "label": "Magpie lite text, Rekognition faces "
        "(local sentiment and intents in Lambda; celebrities and known faces on Rekognition)",
        "TEXT_CAPABILITIES": "sentiment",
        "IMAGE_CAPABILITIES": "faces",
        "collection": True,
        "text": "local",
        "conversation": "local",
        "images": "rekognition",
    },
}
# The providers each profile's "text"/"conversation"/"images" choose (chalicelib/config.py).
PROVIDER_VARIABLES = {
    "text": "TEXT_PROVIDER",
    "conversation": "CONVERSATION_PROVIDER",
    "images": "IMAGE_PROVIDER",
}
FACES_BUCKET = "magpie-faces"

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- Lambda sizes


@functools.cache
def chalice_config(app_dir: Path) -> dict[str, Any]:
    """An app's .chalice/config.json, read once per run (others may be editing it)."""
    for _attempt in range(5):
        try:
            return json.loads((app_dir / ".chalice" / "config.json").read_text())
        except json.JSONDecodeError:
            time.sleep(0.2)  # caught mid-write
    return json.loads((app_dir / ".chalice" / "config.json").read_text())


def chalice_memory(app_dir: Path, function: str, stage: str = "prod") -> int:
    """The memory a Chalice function gets in `stage` (per-function, stage, app, then 128)."""
    config = chalice_config(app_dir)
    stage_config = config.get("stages", {}).get(stage, {})
    for scope in (
        stage_config.get("lambda_functions", {}).get(function, {}),
        stage_config,
        config.get("lambda_functions", {}).get(function, {}),
        config,
    ):
        if "lambda_memory_size" in scope:
            return int(scope["lambda_memory_size"])
    return 128


def lite_image_functions() -> dict[str, dict[str, Any]]:
    """The container-image functions of the stack's lite profile, with their memory
    (infra/magpie_stack/lite.py: the one place the deployed sizes are written)."""
    import sys

    infra = str(ROOT / "infra")
    if infra not in sys.path:
        sys.path.insert(0, infra)
    from magpie_stack.lite import LITE_FUNCTIONS

    return LITE_FUNCTIONS


# Which of a profile's providers moves a core function into the lite container image.
LOCAL_MODEL_FUNCTIONS = {"analyse_text": "text", "analyse_image": "images"}


def function_memory(profile: dict[str, Any], app: str, function: str) -> int:
    """The memory the function is deployed with in this profile: the lite image's size
    where the profile runs local models in it, else its Chalice prod stage's."""
    provider_key = LOCAL_MODEL_FUNCTIONS.get(function) if app == "core" else None
    if provider_key and profile[provider_key] == "local":
        return int(lite_image_functions()[function]["memory_mb"])
    return chalice_memory(APP_DIRS[app], function)


class Context:
    """The Lambda context a handler may read."""

    def __init__(self, function_name: str, memory_mb: int) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.function_version = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


# --------------------------------------------------------------------------- canned AI


def _sentiment_scores(label: str) -> dict[str, float]:
    high = {"Positive": 0.02, "Negative": 0.02, "Neutral": 0.02, "Mixed": 0.02}
    high[label.capitalize()] = 0.94
    return high


class CannedAI:
    """What Comprehend, Rekognition and Lex answer for the corpus (real response shapes)."""

    def __init__(self, meter: Meter, invoke_fulfilment: Any) -> None:
        from chalicelib.analysis.text_prep import strip_for_analysis

        self.meter = meter
        self.invoke_fulfilment = invoke_fulfilment
        self.by_text: dict[str, dict[str, Any]] = {}
        self.by_id: dict[str, dict[str, Any]] = {}
        for message in payloads.messages():
            self.by_text.setdefault(strip_for_analysis(message["text"]), message)
            self.by_id[message["id"]] = message
        self.scenes = payloads.scenes()
        self._matchers: dict[str, Any] = {}  # a LocalIntentMatcher per Lex locale asked

    def install(self) -> None:
        answer = self.meter.answer
        answer("comprehend", "DetectSentiment", self.detect_sentiment)
        answer("comprehend", "BatchDetectSentiment", self.batch_detect_sentiment)
        answer("comprehend", "DetectEntities", self.detect_entities)
        answer("comprehend", "DetectKeyPhrases", self.detect_key_phrases)
        answer("comprehend", "DetectDominantLanguage", self.detect_language)
        answer("rekognition", "DetectLabels", self.detect_labels)
        answer("rekognition", "DetectText", self.detect_text)
        answer("rekognition", "RecognizeCelebrities", self.recognize_celebrities)
        answer("rekognition", "SearchFacesByImage", self.search_faces)
        answer("rekognition", "DetectModerationLabels", self.detect_moderation)
        answer("lexv2-runtime", "RecognizeText", self.recognize_text)

    # --- Comprehend ---

    def _message(self, text: str) -> dict[str, Any]:
        return self.by_text.get(text, {"sentiment": "NEUTRAL", "entities": [], "language": "en"})

    def detect_sentiment(self, params: dict[str, Any]) -> dict[str, Any]:
        label = self._message(params["Text"])["sentiment"]
        return {"Sentiment": label, "SentimentScore": _sentiment_scores(label)}

    def batch_detect_sentiment(self, params: dict[str, Any]) -> dict[str, Any]:
        results = [
            {"Index": i, **self.detect_sentiment({"Text": t})}
            for i, t in enumerate(params["TextList"])
        ]
        return {"ResultList": results, "ErrorList": []}

    def _spans(self, text: str) -> list[dict[str, Any]]:
        spans = []
        for entity in self._message(text)["entities"]:
            begin = text.find(entity["Text"])
            if begin >= 0:
                spans.append(
                    {
                        "Text": entity["Text"],
                        "Type": entity["Type"],
                        "Score": 0.97,
                        "BeginOffset": begin,
                        "EndOffset": begin + len(entity["Text"]),
                    }
                )
        return spans

    def detect_entities(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Entities": self._spans(params["Text"])}

    def detect_key_phrases(self, params: dict[str, Any]) -> dict[str, Any]:
        spans = self._spans(params["Text"])
        return {"KeyPhrases": [{k: s[k] for k in s if k != "Type"} for s in spans]}

    def detect_language(self, params: dict[str, Any]) -> dict[str, Any]:
        language = self._message(params["Text"])["language"]
        code = "en" if language == "und" else language
        return {"Languages": [{"LanguageCode": code, "Score": 0.98}]}

    # --- Rekognition ---

    def _scene(self, params: dict[str, Any]) -> dict[str, Any]:
        key = params["Image"]["S3Object"]["Name"]  # media/YYYY/MM/DD/<message id>/<index>.jpg
        message_id, index = key.split("/")[-2], int(key.split("/")[-1].split(".")[0])
        return self.scenes[self.by_id[message_id]["images"][index]["scene"]]

    def detect_labels(self, params: dict[str, Any]) -> dict[str, Any]:
        labels = self._scene(params)["labels"]
        return {
            "Labels": [
                {"Name": n, "Confidence": 96.0 - i, "Instances": [], "Parents": []}
                for i, n in enumerate(labels)
            ]
        }

    def detect_text(self, params: dict[str, Any]) -> dict[str, Any]:
        detections = []
        for i, line in enumerate(self._scene(params)["text"]):
            box = {"Width": 0.6, "Height": 0.1, "Left": 0.1, "Top": 0.2 + 0.2 * i}
            detections.append(
                {
                    "DetectedText": line,
                    "Type": "LINE",
                    "Id": i,
                    "Confidence": 98.5,
                    "Geometry": {"BoundingBox": box, "Polygon": []},
                }
            )
        return {"TextDetections": detections}

    def recognize_celebrities(self, params: dict[str, Any]) -> dict[str, Any]:
        scene = self._scene(params)
        celebrities = [
            {
                "Name": c["Name"],
                "Id": c["Id"],
                "Urls": [],
                "MatchConfidence": 99.1,
                "Face": {"BoundingBox": c["Box"], "Confidence": 99.9},
            }
            for c in scene["celebrities"]
        ]
        unknown = [{"BoundingBox": box, "Confidence": 99.5} for box in scene["unknown_faces"]]
        return {"CelebrityFaces": celebrities, "UnrecognizedFaces": unknown}

    def search_faces(self, params: dict[str, Any]) -> dict[str, Any]:
        from chalicelib.analysis.aws_image import external_image_id

        scene = self._scene(params)
        known = scene["known"]
        if not scene["unknown_faces"]:
            return {"SearchedFaceBoundingBox": {}, "SearchedFaceConfidence": 0, "FaceMatches": []}
        box = scene["unknown_faces"][known["Face"] if known else 0]
        matches = []
        if known:
            matches.append(
                {
                    "Similarity": 97.0,
                    "Face": {
                        "FaceId": str(uuid.uuid5(uuid.NAMESPACE_URL, known["Name"])),
                        "BoundingBox": box,
                        "ExternalImageId": external_image_id(known["Name"]),
                        "Confidence": 99.0,
                    },
                }
            )
        return {
            "SearchedFaceBoundingBox": box,
            "SearchedFaceConfidence": 99.0,
            "FaceMatches": matches,
        }

    def detect_moderation(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ModerationLabels": [
                {"Name": n, "Confidence": 90.0, "ParentName": ""}
                for n in self._scene(params)["moderation"]
            ]
        }

    # --- Lex V2 ---

    def recognize_text(self, params: dict[str, Any]) -> dict[str, Any]:
        """Lex's NLU (here: the local matcher of the asked locale, built from the same
        bot.json), then Lex calls the fulfilment code hook Lambda, as it does for every
        intent of Magpie's bot."""
        from chalicelib.responders.intents import LocalIntentMatcher, _lex_event

        locale = params["localeId"]
        if locale not in self._matchers:
            self._matchers[locale] = LocalIntentMatcher(locale=locale)
        matcher = self._matchers[locale]
        intent, confidence = matcher.match(params["text"])
        event = _lex_event(matcher, params["text"], params["sessionId"], intent, confidence)
        response = self.invoke_fulfilment(event)
        interpretation: dict[str, Any] = {"intent": {"name": intent}}
        if intent != "FallbackIntent":
            interpretation["nluConfidence"] = {"score": confidence}
        return {
            "sessionState": response["sessionState"],
            "interpretations": [interpretation],
            "messages": response.get("messages", []),
            "sessionId": params["sessionId"],
        }


# --------------------------------------------------------------------------- the world


class _LogBytes(logging.Handler):
    """Bytes the Lambda's root logger would send to CloudWatch (WARNING and up, as the Lambda
    Python runtime's default level)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.bytes = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.bytes += len(self.format(record)) + 60  # timestamp, request id, level prefix


class AwsWorld:
    """moto plus the canned services, the apps loaded, and the event routing."""

    def __init__(self, profile: str, home: Path) -> None:
        self.profile_name = profile
        self.profile = PROFILES[profile]
        self.home = home
        self.meter = Meter()
        self.usage = pricing.empty_usage(0)
        self.express_durations: list[float] = []
        self.express_transitions = 0
        self.queue: deque[dict[str, Any]] = deque()
        self.event_sizes: list[int] = []
        self.outcomes: dict[str, str] = {}
        self.errors: list[str] = []
        self.log_handler = _LogBytes()
        self.x_requests: list[tuple[str, Any]] = []  # (operation, body): X prices by content

    # --- setting up ---

    def env(self) -> dict[str, str]:
        values = {
            "MAGPIE_BACKEND": "aws",
            "MAGPIE_HOME": str(self.home),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "TWITTER_BOT_USER_ID": BOT_USER_ID,
            "TWITTER_SECRET_ID": "TwitterSecret",
            "IDEMPOTENCY_TABLE": "magpie-idempotency",
            "EVENT_BUS_NAME": "magpie",
            "MEDIA_BUCKET": "magpie-media",
            "LEX_BOT_ID": "BENCHBOT01",
            "LEX_BOT_ALIAS_ID": "BENCHALIAS",
            "ALERT_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:{ALERT_TOPIC}",
            "TEXT_CAPABILITIES": self.profile["TEXT_CAPABILITIES"],
            "IMAGE_CAPABILITIES": self.profile["IMAGE_CAPABILITIES"],
            "LOCAL_SENTIMENT": os.environ.get("LOCAL_SENTIMENT", "e5"),
        }
        for key, variable in PROVIDER_VARIABLES.items():
            values[variable] = self.profile[key]
        if self.profile["images"] == "local":
            values["FACE_GALLERY_BUCKET"] = FACES_BUCKET
        if self.profile["collection"]:
            values["REKOGNITION_COLLECTION_ID"] = "magpie-known-faces"
        return values

    @contextlib.contextmanager
    def running(self) -> Iterator[AwsWorld]:
        import responses
        from moto import mock_aws

        from chalicelib import backend

        env = self.env()
        removed = {
            k: ""
            for k in (
                "AWS_PROFILE",
                "AWS_SESSION_TOKEN",
                "REKOGNITION_COLLECTION_ID",
                "FACE_GALLERY_BUCKET",
                "MAGPIE_MEDIA_MIRROR",
            )
        }
        with environment_variables({**removed, **env}), mock_aws():
            for name in removed:
                if name not in env:
                    os.environ.pop(name, None)
            self.meter.install()
            _forget_powertools_parameters()
            backend.reset()
            root = logging.getLogger()
            root.addHandler(self.log_handler)
            try:
                self._create_resources()
                self._load_apps()
                self.canned = CannedAI(self.meter, self._invoke_fulfilment)
                self.canned.install()
                with responses.RequestsMock(assert_all_requests_are_fired=False) as web:
                    self._web(web)
                    yield self
            finally:
                root.removeHandler(self.log_handler)
                self.meter.uninstall()
                _forget_powertools_parameters()
                backend.reset()

    def _create_resources(self) -> None:
        import boto3
        from magpie.moto_world import create_bus, create_idempotency_table, create_twitter_secret

        create_twitter_secret(CONSUMER_SECRET)
        create_idempotency_table("magpie-idempotency")
        create_bus("magpie", tap=None)
        boto3.client("s3").create_bucket(Bucket="magpie-media")
        boto3.client("sns").create_topic(Name=ALERT_TOPIC)
        if self.profile["images"] == "local":
            from chalicelib import backend

            boto3.client("s3").create_bucket(Bucket=FACES_BUCKET)
            enrol_known_faces(backend.face_gallery())  # `magpie faces --aws add`, once
            backend.reset()  # the Lambdas start with a fresh copy of the gallery
        self.meter.reset()  # setting up is not part of the bill

    def _load_apps(self) -> None:
        from magpie.apps import event_subscriptions, load_app

        from chalicelib.alerts import ALERT_PATTERNS
        from chalicelib.bus.pattern import compile_pattern

        self.apps = {name: load_app(name) for name in APP_DIRS}
        self.routes = [
            (s.target, compile_pattern(s.pattern).matches, s.handler)
            for s in event_subscriptions(["responders", "egress"])
        ]
        self.alert_rules = {name: compile_pattern(p).matches for name, p in ALERT_PATTERNS.items()}

    def _web(self, web: Any) -> None:
        meter, wait = self.meter, latency_model()["aws"]

        def photo(request: Any) -> tuple[int, dict[str, str], bytes]:
            scene = payloads.scene_of_url(request.url)
            data = payloads.scene_jpeg(scene)
            meter.count("cdn", "GET photo", len(data))
            meter.add_wait(wait["cdn"]["GET photo"])
            return 200, {"Content-Type": "image/jpeg", "Content-Length": str(len(data))}, data

        def x_api(operation: str, body: dict[str, Any]) -> Any:
            def answer(request: Any) -> tuple[int, dict[str, str], str]:
                meter.count("x", operation)
                self.x_requests.append((operation, request.body))
                meter.add_wait(wait["x"].get(operation, wait["x"]["*"]))
                return 201, {"Content-Type": "application/json"}, json.dumps(body)

            return answer

        web.add_callback("GET", re.compile(r"https://pbs\.twimg\.com/media/.*"), callback=photo)
        api = r"https://api\.(x|twitter)\.com/2/"
        web.add_callback(
            "POST",
            re.compile(api + r"tweets.*"),
            callback=x_api("POST /2/tweets", {"data": {"id": "1999", "text": "ok"}}),
        )
        web.add_callback(
            "POST",
            re.compile(api + r"media/upload.*"),
            callback=x_api("POST /2/media/upload", {"data": {"id": "2999"}}),
        )
        web.add_callback(
            "POST",
            re.compile(api + r"dm_conversations.*"),
            callback=x_api(
                "POST /2/dm_conversations",
                {"data": {"dm_conversation_id": "1-2", "dm_event_id": "3999"}},
            ),
        )

    # --- invoking Lambdas ---

    def invoke(self, app: str, function: str, handler: Any, event: Any) -> Any:
        memory = function_memory(self.profile, app, function)
        name = f"{app}.{function}"
        before = self.log_handler.bytes
        with self.meter.invocation(name, memory) as record:
            try:
                result = handler(event, Context(name, memory))
            except Exception as exc:  # a failed invocation is billed too, and reported
                self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
                result = None
        record.log_bytes = self.log_handler.bytes - before + LOG_PLATFORM_BYTES
        self.usage["log_bytes"] += record.log_bytes
        pricing.add_lambda(self.usage, name, memory, record.billed_ms)
        return result

    def _invoke_fulfilment(self, event: dict[str, Any]) -> dict[str, Any]:
        core = self.apps["core"]
        return self.invoke("core", "lex_fulfilment", core.lex_fulfilment, event)

    def _task(self, function: str, payload: Any) -> tuple[Any, float]:
        """One Lambda task of the workflow: its result and its duration in the workflow."""
        overhead = latency_model()["stepfunctions_task_overhead_ms"]
        errors = len(self.errors)
        result = self.invoke("core", function, getattr(self.apps["core"], function), payload)
        # The state machine logs at level ERROR with execution data (infra/magpie_stack/
        # analysis.py): only a failed task writes its TaskFailed event, with its input.
        if len(self.errors) > errors:
            self.usage["log_bytes"] += _json_size(payload) + 300
        return result, self.meter.invocations[-1].billed_ms + overhead

    # --- the flow ---

    def deliver(self, message: dict[str, Any]) -> int:
        """POST one message's webhook to the ingress Lambda; route everything it causes."""
        from chalicelib.ingress.signature import sign

        body = payloads.delivery([message])
        event = api_gateway_event(body, sign(CONSUMER_SECRET, body))
        self.usage["api_gateway_rest_requests"] += 1
        app = self.apps["ingress"].app
        response = self.invoke("ingress", "api_handler", app, event)
        self.drain()
        return (response or {}).get("statusCode", 0)

    def drain(self) -> None:
        while self._pull_published() or self.queue:
            envelope = self.queue.popleft()
            self.route(envelope)

    def _pull_published(self) -> bool:
        published = self.meter.published
        if not published:
            return False
        for entry in published:
            detail = entry["Detail"]
            size = len(detail.encode()) + len(entry["Source"]) + len(entry["DetailType"])
            self.usage["eventbridge_events"] += pricing.eventbridge_chunks(size)
            envelope = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": entry["DetailType"],
                "source": entry["Source"],
                "account": ACCOUNT,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "region": REGION,
                "resources": [],
                "detail": json.loads(detail),
            }
            whole = len(json.dumps(envelope))
            self.event_sizes.append(whole)
            self.usage["eventbridge_archive_bytes"] += whole
            self.usage["firehose_billed_bytes"] += pricing.firehose_billed_bytes(whole + 1)
            self.usage["log_bytes"] += whole  # the bus's catch-all rule to CloudWatch Logs
            self.queue.append(envelope)
        published.clear()
        return True

    def route(self, envelope: dict[str, Any]) -> None:
        kind = envelope["detail-type"]
        detail = envelope["detail"]
        if kind in ("TWEET_SENT", "TWEET_FAILED", "REPLY_SKIPPED", "MESSAGE_ANALYSIS_FAILED"):
            self.outcomes[str(detail.get("MessageId"))] = kind
        if kind == "MESSAGE_RECEIVED" and envelope["source"] == "magpie.ingress":
            self.workflow(detail)
        for name, matches in self.alert_rules.items():
            if matches(envelope):
                self.alert(name, envelope)
        for name, matches, handler in self.routes:
            if matches(envelope):
                app, function = name.split(".", 1)
                self.invoke(app, function, handler, envelope)

    def workflow(self, message: dict[str, Any]) -> None:
        """The Express state machine: download -> (text || map over images) -> publish."""
        # The first task also records which message this execution analyses (its logged
        # ending is reported from that record), so it is priced with that write.
        execution = (
            "arn:aws:states:us-east-1:123456789012:express:magpie-analysis:"
            f"{message['MessageId']}:1"
        )
        downloaded, download_ms = self._task(
            "download_media", {"Message": message, "Execution": execution}
        )
        if downloaded is None:
            self._task("publish_analysis_failed", {"Message": message, "Error": "download"})
            return
        text, text_ms = self._task("analyse_text", message)
        images, image_ms = [], []
        for media in downloaded["Media"]:
            result, ms = self._task("analyse_image", media)
            images.append(result)
            image_ms.append(ms)
        state = {
            "Message": message,
            "Text": text or {},
            "Images": [i for i in images if i],
            "Rejected": downloaded["Rejected"],
            "Provider": "aws",
        }
        _, publish_ms = self._task("publish_analysis", state)
        # Execution started/succeeded, Parallel and Map entered/exited, with their data.
        self.usage["log_bytes"] += 6 * _json_size(state) + 6 * 300 + 2 * 300 * len(image_ms)
        # The Map runs MAP_CONCURRENCY photos at a time, in parallel with the text branch.
        duration = download_ms + max(text_ms, map_duration(image_ms)) + publish_ms
        self.express_durations.append(duration)
        # States entered (not billed by Express): DownloadMedia, Analyse, AnalyseText,
        # AnalyseImages, one AnalyseImage per photo, PublishAnalysis.
        self.express_transitions += 5 + len(image_ms)
        self.usage["express_executions"] += 1
        self.usage["express_gb_seconds"] += pricing.express_gb_seconds(duration)

    def alert(self, rule: str, envelope: dict[str, Any]) -> None:
        """The rule's alert function claims the alert (DynamoDB) and publishes it (SNS,
        both metered as its requests); SNS e-mails the subscriber and calls the core app's
        forwarder with the JSON alert."""
        core = self.apps["core"]
        function = f"alert_{rule}"
        alert = self.invoke("core", function, getattr(core, function), envelope)
        self.usage["sns_emails"] += 1
        sns_event = {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "EventSubscriptionArn": "arn",
                    "Sns": {
                        "Message": json.dumps(alert),
                        "Subject": None,
                        "MessageAttributes": {},
                        "TopicArn": "arn",
                        "Timestamp": envelope["time"],
                        "MessageId": "m",
                    },
                }
            ]
        }
        self.invoke("core", "forward_alert", core.forward_alert, sns_event)

    # --- the bill ---

    def finish(self, messages: int) -> dict[str, Any]:
        usage = self.usage
        usage["messages"] = messages
        for operation, chars in self.meter.documents:
            pricing.add_count(usage, "comprehend_units", operation, pricing.comprehend_units(chars))
        for (service, operation), n in self.meter.requests.items():
            if service == "comprehend":
                pricing.add_count(usage, "comprehend_requests", operation, n)
            elif service == "rekognition":
                pricing.add_count(usage, "rekognition_images", operation, n)
            elif service == "lexv2-runtime":
                usage["lex_text_requests"] += n
            elif service == "s3":
                usage["s3_get" if operation in ("GetObject", "HeadObject") else "s3_put"] += n
            elif service == "dynamodb":
                reads = ("GetItem", "Query", "Scan", "BatchGetItem")
                usage["dynamodb_read_units" if operation in reads else "dynamodb_write_units"] += n
            elif service == "secretsmanager":
                usage["secretsmanager_calls"] += n
            elif service == "sns":
                usage["sns_publishes"] += n
        return usage


def _forget_powertools_parameters() -> None:
    """Powertools caches secrets (and its clients) across invocations: a new world, a new
    container."""
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters import base

    parameters.clear_caches()
    base.DEFAULT_PROVIDERS.clear()


MAP_CONCURRENCY = 2  # infra/magpie_stack/analysis.py IMAGE_CONCURRENCY


def map_duration(durations: list[float], concurrency: int = MAP_CONCURRENCY) -> float:
    """How long a Map state takes over items of these durations, `concurrency` at a time
    (each next item starts on the first free lane)."""
    lanes = [0.0] * concurrency
    for duration in durations:
        lanes[lanes.index(min(lanes))] += duration
    return max(lanes)


def _json_size(value: Any) -> int:
    return len(json.dumps(value, default=str)) if value is not None else 0


def enrol_known_faces(gallery: Any) -> None:
    """The corpus's known people, from photos that ship in installed packages."""
    from PIL import Image

    from bench.payloads import _source_picture

    for name, source in (("Eileen Collins", "astronaut"), ("Grace Hopper", "grace_hopper")):
        buffer = io.BytesIO()
        _source_picture(source).save(buffer, format="JPEG", quality=92)
        gallery.add(name, [buffer.getvalue()])
    del Image


def api_gateway_event(body: bytes, signature: str) -> dict[str, Any]:
    """The REST API proxy event API Gateway sends the ingress Lambda for a webhook POST."""
    return {
        "resource": "/twitter",
        "path": "/twitter",
        "httpMethod": "POST",
        "headers": {
            "content-type": "application/json",
            "x-twitter-webhooks-signature": signature,
            "user-agent": "Twitter-Webhooks/1.0",
        },
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/twitter",
            "httpMethod": "POST",
            "path": "/prod/twitter",
            "stage": "prod",
            "identity": {"sourceIp": "199.59.150.1"},
            "requestId": str(uuid.uuid4()),
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


# --------------------------------------------------------------------------- running


def run_profile(profile: str, messages: list[dict[str, Any]], warm: int = 3) -> dict[str, Any]:
    """The corpus through one profile; returns usage, the bill and what was measured."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{profile}-") as tmp:
        world = AwsWorld(profile, Path(tmp))
        with world.running():
            # Warm the containers (imports, clients, models): cold starts are reported apart.
            for message in messages[:warm]:
                twin = {**message, "id": str(int(message["id"]) + 1)}
                world.canned.by_id[twin["id"]] = twin
                world.deliver(twin)
            world_meter_reset(world)
            statuses = [world.deliver(m) for m in messages]
            usage = world.finish(len(messages))
        invocations = world.meter.invocations
    bill = pricing.price(usage)
    bill_no_wait = pricing.price(_without_wait(usage, invocations, world))
    bill_wall = pricing.price(_without_wait(usage, invocations, world, wall=True))
    return {
        "profile": profile,
        "label": PROFILES[profile]["label"],
        "settings": {k: v for k, v in PROFILES[profile].items() if k != "label"},
        "messages": len(messages),
        "http_status": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "outcomes": _tally(world.outcomes.values()),
        "errors": world.errors[:20],
        "error_count": len(world.errors),
        "requests": world.meter.by_operation(),
        "requests_per_message": {
            k: v / len(messages) for k, v in world.meter.by_operation().items()
        },
        "lambda": _lambda_summary(invocations),
        "express": _summary(world.express_durations),
        "express_transitions_per_message": world.express_transitions / len(messages),
        "event_bytes": _summary(world.event_sizes),
        "usage": usage,
        "bill": bill,
        "x_bill": x_bill.measured(messages, world.x_requests),
        "bill_without_modelled_wait": {
            k: bill_no_wait[k]
            for k in ("per_million_usd", "ai_per_million_usd", "infra_per_million_usd")
        },
        "bill_raw_wall_clock": {
            k: bill_wall[k] for k in ("per_million_usd", "infra_per_million_usd")
        },
    }


def world_meter_reset(world: AwsWorld) -> None:
    world.meter.reset()
    world.usage = pricing.empty_usage(0)
    world.express_durations.clear()
    world.express_transitions = 0
    world.event_sizes.clear()
    world.outcomes.clear()
    world.errors.clear()
    world.x_requests.clear()


def _without_wait(
    usage: dict[str, Any], invocations: list[Any], world: AwsWorld, wall: bool = False
) -> dict[str, Any]:
    """The same usage with Lambda billed for its own CPU time only (no modelled waits), or,
    with `wall`, for the handler's raw wall time here (moto's in-process work included,
    no CPU scaling), rounded up to 1 ms."""
    import math

    from bench.meter import billed_ms

    bare = json.loads(json.dumps(usage))
    bare["lambda"] = {}
    for record in invocations:
        if wall:
            ms = max(1, math.ceil(record.wall_ms))
        else:
            ms = billed_ms(record.own_ms, 0, record.memory_mb)
        pricing.add_lambda(bare, record.function, record.memory_mb, ms)
    return bare


def _tally(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return dict(sorted(out.items()))


def _summary(values: list[float]) -> dict[str, float]:
    import statistics

    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(values),
        "median": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "mean": statistics.fmean(ordered),
        "max": ordered[-1],
    }


def _lambda_summary(invocations: list[Any]) -> dict[str, Any]:
    by_function: dict[str, list[Any]] = {}
    for record in invocations:
        by_function.setdefault(record.function, []).append(record)
    out = {}
    for function, records in sorted(by_function.items()):
        out[function] = {
            "memory_mb": records[0].memory_mb,
            "invocations": len(records),
            "own_ms": _summary([r.own_ms for r in records]),
            "wait_ms": _summary([r.wait_ms for r in records]),
            "billed_ms": _summary([r.billed_ms for r in records]),
        }
    return out
