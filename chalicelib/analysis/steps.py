"""The analysis steps, with the inputs and outputs the Step Functions definition passes.

  start_analysis({Message, Execution}) -> download_media(Message), the execution recorded
  download_media(message)        -> {"Message", "Media": [{Url, Key, ContentType}], "Rejected"}
  analyse_text(message)          -> {"TextSentiment", "SentimentScore", "TextEntities",
                                     "KeyPhrases", "Language", "Errors"}
  analyse_image(media)           -> {"Key", "Url", "Analysis": {...}, "Errors"}
  publish_analysis(state)        -> MESSAGE_ANALYSED proposed as the message's ending
  publish_analysis_failed(state) -> MESSAGE_ANALYSIS_FAILED proposed likewise
  (each returns the detail of the message's one ending: chalicelib/analysis/ending.py)

An execution that ends without reaching either publish step is reported from its log
(chalicelib/analysis/endings.py).

Each capability is isolated: one that fails is recorded in `Errors` and the others still
report. Throttling is retried inside the AWS adapters; a step that fails as a whole raises,
and the orchestrator (Step Functions, or the local one) retries it and finally publishes
MESSAGE_ANALYSIS_FAILED.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from chalicelib import events
from chalicelib.analysis import ending, endings
from chalicelib.analysis.failures import failure_text
from chalicelib.analysis.retry import CapabilityDisabled
from chalicelib.analysis.text_prep import strip_for_analysis

logger = logging.getLogger(__name__)

UNDETERMINED = {None, "", "und", "zxx", "qme", "qht", "qam", "qct"}


def start_analysis(state: dict[str, Any]) -> dict[str, Any]:
    """The state machine's first step: records which message the execution (its ARN, from
    the context object) analyses, so that an ending only its log reports can be worded for
    the message; then downloads the media."""
    endings.remember(str(state["Execution"]), state["Message"])
    return download_media(state["Message"])


def download_media(message: dict[str, Any]) -> dict[str, Any]:
    from chalicelib import backend
    from chalicelib.analysis.media import download_media as fetch_all
    from chalicelib.config import settings

    received = events.MessageReceived.from_detail(message)
    config = settings()
    stored, rejected = fetch_all(
        received.ImageUrls,
        received.MessageId,
        received.ReceivedAt,
        backend.blob_store(),
        kind=received.Kind,
        allowed_hosts=config.media_allowed_hosts,
        mirror_dir=config.media_mirror if config.backend == "local" else None,
    )
    media = [{"Url": s["Url"], "Key": s["Key"], "ContentType": s["ContentType"]} for s in stored]
    return {"Message": message, "Media": media, "Rejected": rejected}


def _capability(
    errors: list[dict[str, Any]],
    name: str,
    fn: Callable[[], Any],
    default: Any,
    image: str | None = None,
) -> Any:
    """Run one capability; on failure record it and return the default."""
    try:
        return fn()
    except CapabilityDisabled:
        return default
    except Exception as exc:  # recorded in Analysis.Errors, by design
        logger.warning("capability %s failed: %s: %s", name, type(exc).__name__, exc)
        error = {"Capability": name, "Error": failure_text(exc)}
        if image:
            error["Image"] = image
        errors.append(error)
        return default


def analyse_text(message: dict[str, Any]) -> dict[str, Any]:
    """The text branch: only TEXT_CAPABILITIES run, whichever provider answers (a local
    model switched off costs Lambda time as a paid one costs money)."""
    from chalicelib import backend
    from chalicelib.config import settings

    analyser = backend.text_analyser()
    wanted = settings().text_capabilities
    text = strip_for_analysis(str(message.get("Text", "")))
    errors: list[dict[str, Any]] = []
    result: dict[str, Any] = {"TextEntities": [], "KeyPhrases": [], "Errors": errors}
    if not text:
        # Nothing to read once mentions and links are gone: no paid call is made.
        result["Language"] = message.get("Language")
        return result

    def run(name: str, fn: Callable[[], Any], default: Any) -> Any:
        return _capability(errors, name, fn, default) if name in wanted else default

    language = message.get("Language")
    if language in UNDETERMINED:
        detected = run("language", lambda: analyser.detect_language(text), None)
        language = detected.get("LanguageCode") if detected else None
    result["Language"] = language
    lang = language or "en"
    sentiment = run("sentiment", lambda: analyser.sentiment([text], lang), None)
    if sentiment:
        result["TextSentiment"] = sentiment[0]["Sentiment"]
        result["SentimentScore"] = sentiment[0]["SentimentScore"]
    result["TextEntities"] = run("entities", lambda: analyser.entities(text, lang), [])
    result["KeyPhrases"] = run("key_phrases", lambda: analyser.key_phrases(text, lang), [])
    return result


IMAGE_CAPABILITY_DEFAULTS: dict[str, Any] = {
    "faces": {},
    "labels": [],
    "text": [],
    "moderation": [],
}


def analyse_image(media: dict[str, Any]) -> dict[str, Any]:
    """The image branch, one photo. An adapter that waits on the network for each
    capability (Rekognition: one request each) has them asked side by side, so the step
    waits for the slowest instead of their sum; local models, bound by the CPU and sharing
    one decoded image, run one after another."""
    from chalicelib import backend
    from chalicelib.config import settings

    analyser = backend.image_analyser()
    key = media["Key"]
    calls = {
        "faces": analyser.faces,
        "labels": analyser.labels,
        "text": analyser.text,
        "moderation": analyser.moderation,
    }
    wanted = [name for name in calls if name in settings().image_capabilities]

    def run(name: str) -> tuple[Any, list[dict[str, Any]]]:
        errors: list[dict[str, Any]] = []
        default = IMAGE_CAPABILITY_DEFAULTS[name]
        return _capability(errors, name, lambda: calls[name](key), default, image=key), errors

    if analyser.waits_on_network and len(wanted) > 1:
        outcomes = _on_threads_of_their_own(run, wanted)
    else:
        outcomes = {name: run(name) for name in wanted}
    found = {
        name: outcomes[name][0] if name in outcomes else IMAGE_CAPABILITY_DEFAULTS[name]
        for name in calls
    }
    analysis = {
        "Labels": found["labels"],
        "TextDetections": found["text"],
        "CelebrityFaces": found["faces"].get("CelebrityFaces", []),
        "UnrecognizedFaces": found["faces"].get("UnrecognizedFaces", []),
        "ModerationLabels": found["moderation"],
    }
    errors = [error for name in wanted for error in outcomes[name][1]]
    return {"Key": key, "Url": media.get("Url", ""), "Analysis": analysis, "Errors": errors}


def _on_threads_of_their_own(fn: Callable[[str], Any], names: list[str]) -> dict[str, Any]:
    """fn(name) for every name at once, each on a new thread (a reused pool thread would
    run two network waits back to back); the first exception is raised again here."""
    results: dict[str, Any] = {}
    failures: list[BaseException] = []

    def run(name: str) -> None:
        try:
            results[name] = fn(name)
        except BaseException as exc:  # handed to the caller below, not swallowed
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,), name=f"image-{n}") for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results


def build_analysed(state: dict[str, Any]) -> events.MessageAnalysed:
    """Assemble MESSAGE_ANALYSED from the parallel branches' outputs."""
    message = events.MessageReceived.from_detail(state["Message"])
    text = state.get("Text") or {}
    images = state.get("Images") or []
    errors = [*text.get("Errors", []), *(e for image in images for e in image.get("Errors", []))]
    # An image the state machine caught carries {Error, Cause}: worded here like the rest.
    errors = [{**e, "Error": failure_text(e.get("Error"))} for e in errors]
    analysis = events.Analysis(
        TextSentiment=text.get("TextSentiment"),
        SentimentScore=text.get("SentimentScore"),
        TextEntities=text.get("TextEntities", []),
        KeyPhrases=text.get("KeyPhrases", []),
        Language=text.get("Language"),
        Images=[
            events.AnalysedImage(
                Key=i["Key"], Url=i.get("Url", ""), Analysis=events.ImageAnalysis(**i["Analysis"])
            )
            for i in images
        ],
        RejectedMedia=[events.RejectedMedia(**r) for r in state.get("Rejected", [])],
        Errors=[events.CapabilityError(**e) for e in errors],
        Provider=state.get("Provider"),
    )
    return events.MessageAnalysed(
        Text=message.Text,
        Author=message.Author,
        Twitter=message.Twitter,
        MessageId=message.MessageId,
        Kind=message.Kind,
        Analysis=analysis,
        Language=text.get("Language") or message.Language,
        ReceivedAt=message.ReceivedAt,
    )


def publish_analysis(state: dict[str, Any]) -> dict[str, Any]:
    """MESSAGE_ANALYSED, unless the message already ended: the detail of its one ending."""
    return ending.settle(ending.analysed(build_analysed(state))).detail


def publish_analysis_failed(state: dict[str, Any]) -> dict[str, Any]:
    """MESSAGE_ANALYSIS_FAILED (the workflow's Catch, and an execution's logged ending:
    endings.analysis_stopped), unless the message already ended: the detail of its ending."""
    received = events.MessageReceived.from_detail(state["Message"])
    proposal = ending.analysis_failed(received, failure_text(state.get("Error")))
    return ending.settle(proposal).detail
