"""The analysis workflow run in-process: what the Step Functions state machine does on AWS.

download -> (text || each image, at most `image_concurrency` at once) -> publish. Each step
is retried with backoff like the state machine's Retry; when the analysis cannot complete,
MESSAGE_ANALYSIS_FAILED is published with the reason. One image whose analysis fails is
recorded in Errors and the message is still analysed. A message is analysed once per id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from chalicelib.analysis import steps
from chalicelib.analysis.failures import failure_text

logger = logging.getLogger(__name__)
T = TypeVar("T")


def with_step_retries(
    fn: Callable[[], T],
    *,
    attempts: int = 3,
    base_delay: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == attempts:
                raise
            logger.warning("step failed (attempt %d): %s: %s", attempt, type(exc).__name__, exc)
            sleep(base_delay * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def analyse(
    message: dict[str, Any],
    *,
    image_concurrency: int = 2,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Run the workflow for one MESSAGE_RECEIVED detail; returns the published detail."""
    try:
        state = analysis_state(message, image_concurrency=image_concurrency, sleep=sleep)
    except Exception as exc:  # the workflow's Catch: reported, not swallowed
        logger.error("analysis of %s failed: %s", message.get("MessageId"), exc)
        return steps.publish_analysis_failed({"Message": message, "Error": failure_text(exc)})
    return steps.publish_analysis(state)


def analysis_state(
    message: dict[str, Any],
    *,
    image_concurrency: int = 2,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The workflow's state once every step has run (what `steps.build_analysed` reads),
    published nowhere: a step that still fails after its retries raises."""
    downloaded = with_step_retries(lambda: steps.download_media(message), sleep=sleep)
    with ThreadPoolExecutor(1 + image_concurrency, thread_name_prefix="analysis") as pool:
        text = pool.submit(with_step_retries, lambda: steps.analyse_text(message), sleep=sleep)
        images = [pool.submit(_image_or_error, media, sleep) for media in downloaded["Media"]]
        return {
            "Message": message,
            "Text": text.result(),
            "Images": [f.result() for f in images],
            "Rejected": downloaded["Rejected"],
            "Provider": _provider(),
        }


def _image_or_error(media: dict[str, Any], sleep: Callable[[float], None]) -> dict[str, Any]:
    try:
        return with_step_retries(lambda: steps.analyse_image(media), sleep=sleep)
    except Exception as exc:  # recorded on the image, the message is still analysed
        empty: dict[str, list[Any]] = {
            "Labels": [],
            "TextDetections": [],
            "CelebrityFaces": [],
            "UnrecognizedFaces": [],
            "ModerationLabels": [],
        }
        return {
            "Key": media["Key"],
            "Url": media.get("Url", ""),
            "Analysis": empty,
            "Errors": [
                {
                    "Capability": "image",
                    "Image": media["Key"],
                    "Error": failure_text(exc),
                }
            ],
        }


def _provider() -> str:
    from chalicelib.config import settings

    return settings().backend
