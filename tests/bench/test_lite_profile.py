"""The lite profile, as the cost benchmark runs it: the AWS code path on moto with the
local models inside the Lambdas, chosen by the same settings the stack's lite profile sets."""

from __future__ import annotations

import pytest

from bench import aws_cost, payloads


@pytest.fixture(scope="module")
def lite_run() -> dict:
    photo_messages = [m for m in payloads.messages() if m["images"]][:3]
    text_messages = [m for m in payloads.messages() if not m["images"]][:2]
    return aws_cost.run_profile("lite", photo_messages + text_messages, warm=1)


@pytest.mark.slow
def test_lite_calls_no_ai_service_and_answers_every_message(lite_run):
    services = {operation.split(":")[0] for operation in lite_run["requests"]}
    assert not services & {"comprehend", "rekognition", "lexv2-runtime"}
    assert lite_run["error_count"] == 0
    assert lite_run["outcomes"] == {"TWEET_SENT": 5}
    assert lite_run["bill"]["ai_per_million_usd"] == 0


@pytest.mark.slow
def test_lite_prices_the_analysis_at_the_container_images_memory(lite_run):
    deployed = aws_cost.lite_image_functions()
    for function in ("analyse_text", "analyse_image"):
        measured = lite_run["lambda"][f"core.{function}"]
        assert measured["memory_mb"] == deployed[function]["memory_mb"]
    # Functions that stay in the zip keep their Chalice size.
    assert lite_run["lambda"]["core.download_media"]["memory_mb"] == aws_cost.chalice_memory(
        aws_cost.ROOT, "download_media"
    )
