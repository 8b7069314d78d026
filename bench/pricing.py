"""Price a usage record with bench/prices.json: itemised, per message and per million.

A usage record is a plain dict of quantities (see `empty_usage`), counted by the AWS
benchmark (bench/aws_cost.py) or derived from the reference design's call plan
(bench/reference.py). Every rounding rule AWS bills by lives here, in small functions that
tests/bench checks: Comprehend's 100-character units with a 3-unit minimum, Lambda's 1 ms,
Express's 100 ms and 64 MB increments, EventBridge's 64 KB chunks, Firehose's 5 KB records.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).resolve().parent / "prices.json"
AI_SERVICES = ("comprehend", "rekognition", "lex")


@functools.cache
def price_table(path: Path = PRICES_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())


def empty_usage(messages: int) -> dict[str, Any]:
    return {
        "messages": messages,
        "lambda": {},  # function -> {"memory_mb", "invocations", "billed_ms"}
        "express_executions": 0,
        "express_gb_seconds": 0.0,
        "standard_transitions": 0,
        "api_gateway_rest_requests": 0,
        "eventbridge_events": 0,  # 64 KB chunks
        "eventbridge_archive_bytes": 0,
        "comprehend_units": {},  # operation -> units
        "comprehend_requests": {},  # operation -> requests
        "rekognition_images": {},  # operation -> images
        "lex_text_requests": 0,
        "s3_put": 0,
        "s3_get": 0,
        "dynamodb_write_units": 0,
        "dynamodb_read_units": 0,
        "secretsmanager_calls": 0,
        "sns_publishes": 0,
        "sns_emails": 0,
        "firehose_billed_bytes": 0,
        "log_bytes": 0,
    }


# --- billing rules ---------------------------------------------------------------------


def comprehend_units(chars: int, table: dict[str, Any] | None = None) -> int:
    """Units Comprehend bills for one document of `chars` characters."""
    p = (table or price_table())["prices"]["comprehend"]
    return max(p["minimum_units"], math.ceil(chars / p["unit_chars"]))


def lambda_gb_seconds(billed_ms: int, memory_mb: int) -> float:
    return billed_ms / 1000 * memory_mb / 1024


def express_gb_seconds(
    duration_ms: float, memory_mb: int = 64, table: dict[str, Any] | None = None
) -> float:
    """Express bills duration in 100 ms increments and memory in 64 MB increments."""
    p = (table or price_table())["prices"]["stepfunctions"]
    step_ms, step_mb = p["express_duration_increment_ms"], p["express_memory_increment_mb"]
    billed_ms = max(1, math.ceil(duration_ms / step_ms)) * step_ms
    billed_mb = max(1, math.ceil(memory_mb / step_mb)) * step_mb
    return billed_ms / 1000 * billed_mb / 1024


def eventbridge_chunks(entry_bytes: int, table: dict[str, Any] | None = None) -> int:
    """Events EventBridge bills for one PutEvents entry (each 64 KB chunk is one)."""
    chunk = (table or price_table())["prices"]["eventbridge"]["event_chunk_bytes"]
    return max(1, math.ceil(entry_bytes / chunk))


def firehose_billed_bytes(record_bytes: int, table: dict[str, Any] | None = None) -> int:
    step = (table or price_table())["prices"]["firehose"]["record_increment_bytes"]
    return max(1, math.ceil(record_bytes / step)) * step


def add_lambda(usage: dict[str, Any], function: str, memory_mb: int, billed_ms: int) -> None:
    entry = usage["lambda"].setdefault(
        function, {"memory_mb": memory_mb, "invocations": 0, "billed_ms": 0, "gb_seconds": 0.0}
    )
    entry["invocations"] += 1
    entry["billed_ms"] += billed_ms
    entry["gb_seconds"] += lambda_gb_seconds(billed_ms, memory_mb)


def add_count(usage: dict[str, Any], key: str, name: str, amount: int = 1) -> None:
    usage[key][name] = usage[key].get(name, 0) + amount


# --- pricing ---------------------------------------------------------------------------


def _line(group: str, service: str, item: str, quantity: float, unit: float) -> dict[str, Any]:
    return {
        "group": group,
        "service": service,
        "item": item,
        "quantity": quantity,
        "unit_usd": unit,
        "usd": quantity * unit,
    }


def price(usage: dict[str, Any], table: dict[str, Any] | None = None) -> dict[str, Any]:
    """Itemised bill of a usage record; totals per message and per million messages."""
    table = table or price_table()
    p = table["prices"]
    lines: list[dict[str, Any]] = []
    for op, units in sorted(usage["comprehend_units"].items()):
        lines.append(_line("AI", "comprehend", f"{op} (units)", units, p["comprehend"]["unit"]))
    rek = p["rekognition"]
    for op, images in sorted(usage["rekognition_images"].items()):
        unit = rek["image_group1"] if op in rek["group1"] else rek["image_group2"]
        lines.append(_line("AI", "rekognition", op, images, unit))
    if usage["lex_text_requests"]:
        lines.append(
            _line(
                "AI", "lex", "RecognizeText", usage["lex_text_requests"], p["lex"]["text_request"]
            )
        )
    requests = sum(f["invocations"] for f in usage["lambda"].values())
    gb_seconds = sum(f["gb_seconds"] for f in usage["lambda"].values())
    lines.append(_line("infra", "lambda", "requests", requests, p["lambda"]["request"]))
    lines.append(
        _line("infra", "lambda", "GB-seconds", gb_seconds, p["lambda"]["gb_second_x86_64"])
    )
    sfn = p["stepfunctions"]
    if usage["standard_transitions"]:
        lines.append(
            _line(
                "infra",
                "stepfunctions",
                "standard transitions",
                usage["standard_transitions"],
                sfn["standard_transition"],
            )
        )
    if usage["express_executions"]:
        lines.append(
            _line(
                "infra",
                "stepfunctions",
                "express executions",
                usage["express_executions"],
                sfn["express_request"],
            )
        )
        lines.append(
            _line(
                "infra",
                "stepfunctions",
                "express GB-seconds",
                usage["express_gb_seconds"],
                sfn["express_gb_second"],
            )
        )
    lines.append(
        _line(
            "infra",
            "api_gateway",
            "REST requests",
            usage["api_gateway_rest_requests"],
            p["api_gateway"]["rest_request"],
        )
    )
    eb = p["eventbridge"]
    lines.append(
        _line(
            "infra", "eventbridge", "custom events", usage["eventbridge_events"], eb["custom_event"]
        )
    )
    lines.append(
        _line(
            "infra",
            "eventbridge",
            "archive GB",
            usage["eventbridge_archive_bytes"] / 1e9,
            eb["archive_gb"],
        )
    )
    lines.append(_line("infra", "s3", "PUT requests", usage["s3_put"], p["s3"]["put"]))
    lines.append(_line("infra", "s3", "GET requests", usage["s3_get"], p["s3"]["get"]))
    ddb = p["dynamodb"]
    lines.append(
        _line(
            "infra",
            "dynamodb",
            "write units",
            usage["dynamodb_write_units"],
            ddb["write_request_unit"],
        )
    )
    lines.append(
        _line(
            "infra",
            "dynamodb",
            "read units",
            usage["dynamodb_read_units"],
            ddb["read_request_unit"],
        )
    )
    lines.append(
        _line(
            "infra",
            "secretsmanager",
            "API calls",
            usage["secretsmanager_calls"],
            p["secretsmanager"]["api_call"],
        )
    )
    lines.append(_line("infra", "sns", "publishes", usage["sns_publishes"], p["sns"]["publish"]))
    lines.append(
        _line("infra", "sns", "email notifications", usage["sns_emails"], p["sns"]["email"])
    )
    lines.append(
        _line(
            "infra",
            "firehose",
            "GB ingested (5 KB records)",
            usage["firehose_billed_bytes"] / 1e9,
            p["firehose"]["gb_ingested"],
        )
    )
    lines.append(
        _line(
            "infra",
            "cloudwatch_logs",
            "GB ingested",
            usage["log_bytes"] / 1e9,
            p["cloudwatch_logs"]["ingest_gb"],
        )
    )
    lines = [line for line in lines if line["quantity"]]
    messages = usage["messages"]
    total = sum(line["usd"] for line in lines)
    ai = sum(line["usd"] for line in lines if line["group"] == "AI")
    per_million = 1_000_000 / messages
    by_service: dict[str, float] = {}
    for line in lines:
        by_service[line["service"]] = (
            by_service.get(line["service"], 0.0) + line["usd"] * per_million
        )
    return {
        "messages": messages,
        "lines": lines,
        "total_usd": total,
        "per_message_usd": total / messages,
        "per_million_usd": total * per_million,
        "ai_per_million_usd": ai * per_million,
        "infra_per_million_usd": (total - ai) * per_million,
        "by_service_per_million_usd": by_service,
        "per_million_gbp": total * per_million / table["usd_per_gbp"],
    }
