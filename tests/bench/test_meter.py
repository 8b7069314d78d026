"""The request counter: botocore hooks count every request and attribute it to an invocation."""

from __future__ import annotations

import boto3
import pytest

from bench.meter import Meter, modelled_latency_ms


@pytest.fixture
def meter(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    meter = Meter().install()
    yield meter
    meter.uninstall()


def test_counts_by_service_and_operation_and_answers_without_sending(meter):
    meter.answer(
        "comprehend",
        "DetectSentiment",
        lambda params: {
            "Sentiment": "POSITIVE" if "love" in params["Text"] else "NEUTRAL",
            "SentimentScore": {"Positive": 0.9, "Negative": 0.0, "Neutral": 0.1, "Mixed": 0.0},
        },
    )
    client = boto3.client("comprehend", region_name="us-east-1")
    with meter.invocation("core.analyse_text", 1769) as record:
        first = client.detect_sentiment(Text="I love it", LanguageCode="en")
        client.detect_sentiment(Text="ok", LanguageCode="en")
    assert first["Sentiment"] == "POSITIVE"
    assert meter.by_operation() == {"comprehend:DetectSentiment": 2}
    assert record.requests[("comprehend", "DetectSentiment")] == 2
    assert meter.documents == [("DetectSentiment", 9), ("DetectSentiment", 2)]
    assert record.wait_ms == 2 * modelled_latency_ms("comprehend", "DetectSentiment")
    assert record.billed_ms >= record.wait_ms


def test_captures_published_events_and_nested_invocations(meter):
    meter.answer(
        "events", "PutEvents", lambda p: {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}
    )
    client = boto3.client("events", region_name="us-east-1")
    with meter.invocation("outer", 256) as outer:
        client.put_events(Entries=[{"Source": "s", "DetailType": "T", "Detail": "{}"}])
        meter.add_call_time(0.0, "lexv2-runtime", "RecognizeText")
        with meter.invocation("inner", 256) as inner:
            pass
    assert [e["DetailType"] for e in meter.published] == ["T"]
    assert [r.function for r in meter.invocations] == ["inner", "outer"]
    expected = (
        modelled_latency_ms("events", "PutEvents")
        + modelled_latency_ms("lexv2-runtime", "RecognizeText")
        + inner.billed_ms
    )
    assert outer.wait_ms == expected
    assert "inner" not in {f for s, f in outer.requests}


def test_uninstall_restores_botocore():
    from botocore.client import ClientCreator

    original = ClientCreator.create_client
    meter = Meter().install()
    assert ClientCreator.create_client is not original
    meter.uninstall()
    assert ClientCreator.create_client is original


def test_calls_on_a_handlers_thread_pool_wait_for_the_slowest_not_the_sum(meter):
    import threading

    labels = modelled_latency_ms("rekognition", "DetectLabels")
    celebrities = modelled_latency_ms("rekognition", "RecognizeCelebrities")
    with meter.invocation("core.analyse_image", 512) as record:
        meter.add_call_time(0.0, "s3", "GetObject")  # on the handler's own thread
        threads = [
            threading.Thread(target=meter.add_call_time, args=(0.0, "rekognition", operation))
            for operation in ("DetectLabels", "RecognizeCelebrities")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    own_thread = modelled_latency_ms("s3", "GetObject")
    assert record.wait_ms == own_thread + max(labels, celebrities)
