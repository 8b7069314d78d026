"""The benchmark's price arithmetic: AWS's billing rules and the reference's call plan."""

from __future__ import annotations

import math

import pytest

from bench import pricing, reference
from bench.meter import billed_ms, cpu_scale


@pytest.mark.parametrize(("chars", "units"), [(0, 3), (1, 3), (300, 3), (301, 4), (1000, 10)])
def test_comprehend_bills_100_character_units_with_a_3_unit_minimum(chars, units):
    assert pricing.comprehend_units(chars) == units


def test_lambda_bills_whole_milliseconds_and_scales_cpu_below_one_vcpu():
    assert billed_ms(0.2, 0, 1769) == 1
    assert billed_ms(10.2, 5, 2048) == 16  # ceil(15.2): a full vCPU or more runs at our speed
    assert billed_ms(10, 0, 256) == math.ceil(10 * 1769 / 256)
    assert cpu_scale(128) == pytest.approx(1769 / 128)
    assert pricing.lambda_gb_seconds(1000, 1024) == 1.0


def test_express_rounds_up_to_100_ms_and_64_mb():
    assert pricing.express_gb_seconds(1, 64) == pytest.approx(0.1 * 64 / 1024)
    assert pricing.express_gb_seconds(101, 65) == pytest.approx(0.2 * 128 / 1024)


def test_event_and_record_increments():
    assert pricing.eventbridge_chunks(1) == 1
    assert pricing.eventbridge_chunks(64 * 1024) == 1
    assert pricing.eventbridge_chunks(64 * 1024 + 1) == 2
    assert pricing.firehose_billed_bytes(1) == 5120
    assert pricing.firehose_billed_bytes(5121) == 10240


def test_a_bill_adds_up_and_scales_to_a_million():
    usage = pricing.empty_usage(2)
    pricing.add_count(usage, "comprehend_units", "DetectSentiment", 6)  # two short texts
    pricing.add_count(usage, "rekognition_images", "RecognizeCelebrities", 1)
    usage["lex_text_requests"] = 1
    pricing.add_lambda(usage, "f", 1024, 500)  # 0.5 GB-s
    bill = pricing.price(usage)
    expected_ai = 6 * 1e-4 + 1e-3 + 7.5e-4
    expected = expected_ai + 2e-7 + 0.5 * 1.66667e-5
    assert bill["total_usd"] == pytest.approx(expected)
    assert bill["per_message_usd"] == pytest.approx(expected / 2)
    assert bill["per_million_usd"] == pytest.approx(expected / 2 * 1e6)
    assert bill["ai_per_million_usd"] == pytest.approx(expected_ai / 2 * 1e6)
    assert bill["per_million_gbp"] == pytest.approx(bill["per_million_usd"] / 1.27)


def test_every_price_names_its_public_source():
    table = pricing.price_table()
    assert table["region"] == "us-east-1" and table["taken"]
    for service, entry in table["prices"].items():
        assert entry["source"].startswith("https://aws.amazon.com/"), service


@pytest.mark.parametrize(("photos", "transitions"), [(0, 7), (1, 12), (4, 24)])
def test_reference_standard_workflow_transitions(photos, transitions):
    assert reference.standard_transitions(photos) == transitions


def test_reference_plan_calls_every_ai_service_it_describes():
    messages = [
        {"text": "@bot tell me a joke", "images": [], "sentiment": "NEUTRAL"},
        {"text": "@bot who is this?", "images": [{}, {}], "sentiment": "NEGATIVE"},
    ]
    usage = reference.reference_usage(messages)
    assert usage["comprehend_units"] == {"DetectEntities": 6, "DetectSentiment": 6}
    assert usage["rekognition_images"] == {
        "DetectLabels": 2,
        "DetectText": 2,
        "RecognizeCelebrities": 2,
    }
    assert usage["lex_text_requests"] == 1
    assert usage["standard_transitions"] == 7 + 16
    assert usage["sns_publishes"] == 1
    assert usage["api_gateway_rest_requests"] == 2


def test_express_map_runs_photos_two_at_a_time():
    from bench.aws_cost import map_duration

    assert map_duration([]) == 0
    assert map_duration([500]) == 500
    assert map_duration([500, 400, 300]) == 700  # 500 | 400 then 300
    assert map_duration([100, 100, 100, 100]) == 200
