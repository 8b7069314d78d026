"""Webhook latency (warm, in-process) and cold import time of each app's Lambda module.

`python -m bench.webhook` writes bench/results/webhook.json.

Warm latency: the Lambda entry point itself, `app(event, context)` with the API Gateway proxy
event, timed around the call (no network, no HTTP server), many times; the bodies are signed
beforehand and every POST carries new message ids (no duplicate shortcut). Cases: the CRC
GET, a signed POST with 1 event and with 10 events. Backends:

* local: the real local bus and idempotency (SQLite commits: events at synchronous=FULL,
  idempotency records at NORMAL);
* local, in-memory bus and idempotency: the handler's own cost with the I/O stubbed out;
* aws (moto): EventBridge, DynamoDB and Secrets Manager in-process; also reported without
  the time spent inside botocore calls (moto's work stands in for the network there).

Against a bare Chalice app answering the same routes with constants (bench/bare_app).

Cold import: `import app` in a fresh interpreter in each app's folder (median of N), against
the bare app, plus which heavy modules that import pulled in. And the lazy imports the first
request then makes on the AWS backend (boto3, Powertools idempotency and parameters).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from magpie import apps

from bench import payloads
from bench.aws_cost import AwsWorld, Context, api_gateway_event
from bench.cold_path import HEAVY_MODULES
from bench.environment import (
    SCRATCH_DIR,
    environment_variables,
    machine,
    stats_ms,
    write_result,
)

# The bare Chalice app to compare against, then Magpie's four.
APP_DIRS = {"bare": Path(__file__).resolve().parent / "bare_app", **apps.APP_DIRS}
SECRET = "bench-webhook-secret"  # noqa: S105 (made up)
BOT = payloads.corpus()["bot_user_id"]


# --------------------------------------------------------------------------- warm latency


def crc_event(token: str) -> dict[str, Any]:
    event = api_gateway_event(b"", "")
    event.update(
        httpMethod="GET",
        body=None,
        queryStringParameters={"crc_token": token},
        multiValueQueryStringParameters={"crc_token": [token]},
    )
    event["headers"] = {"user-agent": "Twitter-CRC"}
    event["requestContext"]["httpMethod"] = "GET"
    return event


def post_events(count: int, events_per_post: int, offset: int = 0) -> list[dict[str, Any]]:
    """Signed POST events, each with `events_per_post` text mentions of new message ids."""
    from chalicelib.ingress.signature import sign

    template = [m for m in payloads.messages() if m["kind"] == "MENTION" and not m["images"]]
    out = []
    for i in range(count):
        batch = []
        for j in range(events_per_post):
            message = dict(template[(i * events_per_post + j) % len(template)])
            message["id"] = str(9_000_000_000_000_000_000 + offset + i * events_per_post + j)
            batch.append(message)
        body = payloads.delivery(batch)
        out.append(api_gateway_event(body, sign(SECRET, body)))
    return out


def time_calls(
    handler: Callable[[Any, Any], Any], events: list[Any], check: int = 200
) -> list[float]:
    context = Context("bench-ingress", 256)
    times = []
    for event in events:
        start = time.perf_counter()
        response = handler(event, context)
        times.append(time.perf_counter() - start)
        if response["statusCode"] != check:
            raise RuntimeError(
                f"unexpected answer {response['statusCode']}: {response.get('body')}"
            )
    return times


class MemoryBus:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def put(self, events: Any) -> None:
        self.events.extend(events)


class MemoryIdempotency:
    def __init__(self) -> None:
        self.done: dict[str, Any] = {}

    def once(self, namespace: str, key: str, fn: Callable[[], Any]) -> Any:
        full = f"{namespace}:{key}"
        if full not in self.done:
            self.done[full] = fn()
        return self.done[full]


def _cases(app: Any, runs: int, posts_1: int, posts_10: int, offset: int) -> dict[str, Any]:
    crc = [crc_event(f"token-{i}") for i in range(runs)]
    one = post_events(posts_1, 1, offset)
    ten = post_events(posts_10, 10, offset + 5_000_000)
    time_calls(app, crc[:20])  # warm: first calls load what the handler needs
    time_calls(app, post_events(20, 1, offset + 9_000_000))
    return {
        "crc": stats_ms(time_calls(app, crc)),
        "post_1_event": stats_ms(time_calls(app, one)),
        "post_10_events": stats_ms(time_calls(app, ten)),
    }


def warm_latency(runs: int = 2000, posts: int = 1000, posts_10: int = 200) -> dict[str, Any]:
    from magpie.apps import load_app

    from chalicelib import backend

    results: dict[str, Any] = {}
    bare = _load_bare()
    results["bare_chalice"] = _cases(bare.app, runs, posts, posts_10, 0)
    ingress = load_app("ingress").app
    SCRATCH_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-webhook-", dir=SCRATCH_DIR) as home:
        env = {
            "MAGPIE_BACKEND": "local",
            "MAGPIE_HOME": home,
            "TWITTER_BOT_USER_ID": BOT,
            "TWITTER_API_SECRET": SECRET,
        }
        with environment_variables(env):
            backend.reset()
            results["magpie_local_sqlite"] = _cases(ingress, runs, posts, posts_10, 100_000_000)
            # Every factory the webhook reads I/O adapters from (chalicelib/ingress/http.py).
            bus, idem = MemoryBus(), MemoryIdempotency()
            stubs = {"event_bus": lambda: bus, "ingress_idempotency": lambda: idem}
            originals = {name: getattr(backend, name) for name in stubs}
            for name, stub in stubs.items():
                setattr(backend, name, stub)
            try:
                results["magpie_local_in_memory_bus"] = _cases(
                    ingress, runs, posts, posts_10, 200_000_000
                )
                if not (bus.events and idem.done):  # the webhook read another factory
                    raise RuntimeError("the in-memory case did not replace the webhook's I/O")
            finally:
                for name, original in originals.items():
                    setattr(backend, name, original)
                backend.reset()
    results["magpie_aws_moto"] = _aws_cases(
        ingress, min(runs, 500), min(posts, 300), min(posts_10, 60)
    )
    return results


def _aws_cases(ingress: Any, runs: int, posts: int, posts_10: int) -> dict[str, Any]:
    """On moto, with the meter: wall time, and wall time less the time inside AWS calls."""
    import bench.aws_cost as aws_cost

    with tempfile.TemporaryDirectory(prefix="bench-webhook-aws-") as home:
        world = AwsWorld("same-features", Path(home))
        saved = aws_cost.CONSUMER_SECRET
        aws_cost.CONSUMER_SECRET = SECRET
        try:
            with world.running():
                meter = world.meter
                out: dict[str, Any] = {}
                for name, events in (
                    ("crc", [crc_event(f"t{i}") for i in range(runs)]),
                    ("post_1_event", post_events(posts, 1, 300_000_000)),
                    ("post_10_events", post_events(posts_10, 10, 400_000_000)),
                ):
                    time_calls(ingress, events[:10])  # warm
                    walls, owns = [], []
                    for event in events[10:]:
                        with meter.invocation("ingress", 256) as record:
                            ingress(event, Context("bench-ingress", 256))
                        walls.append(record.wall_ms / 1000)
                        owns.append(record.own_ms / 1000)
                    meter.published.clear()
                    out[name] = {"wall": stats_ms(walls), "excluding_aws_calls": stats_ms(owns)}
                return out
        finally:
            aws_cost.CONSUMER_SECRET = saved


def _load_bare() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_bare_app", APP_DIRS["bare"] / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- cold import

_IMPORT_PROBE = """
import json, sys, time
start = time.perf_counter()
import app
elapsed = time.perf_counter() - start
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"seconds": elapsed, "heavy": heavy, "modules": len(sys.modules)}}))
"""

_LAZY_PROBE = """
import json, time
import app
start = time.perf_counter()
import boto3
boto3.client("events", region_name="us-east-1")
from aws_lambda_powertools.utilities.idempotency import idempotent_function, IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities import parameters
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def _probe(code: str, cwd: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(
        MAGPIE_BACKEND="aws",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    out = subprocess.run(  # noqa: S603 (our interpreter, fixed code)
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_imports(runs: int = 10) -> dict[str, Any]:
    code = _IMPORT_PROBE.format(heavy=HEAVY_MODULES)
    results: dict[str, Any] = {}
    for name, folder in APP_DIRS.items():
        _probe(code, folder)  # bytecode caches warm, as in a deployed package
        samples = [_probe(code, folder) for _ in range(runs)]
        seconds = [s["seconds"] for s in samples]
        results[name] = {
            "median_ms": statistics.median(seconds) * 1000,
            "min_ms": min(seconds) * 1000,
            "max_ms": max(seconds) * 1000,
            "runs": runs,
            "heavy_modules_imported": samples[-1]["heavy"],
            "modules_loaded": samples[-1]["modules"],
        }
    bare = results["bare"]["median_ms"]
    for r in results.values():
        r["over_bare_ms"] = r["median_ms"] - bare
    results["ingress"]["target_over_bare_ms"] = 150
    results["ingress"]["meets_target"] = results["ingress"]["over_bare_ms"] <= 150
    lazy = [_probe(_LAZY_PROBE, APP_DIRS["ingress"])["seconds"] for _ in range(max(3, runs // 2))]
    results["ingress_first_request_lazy_imports_aws"] = {
        "what": "boto3 + one client + Powertools idempotency and parameters, after `import app`",
        "median_ms": statistics.median(lazy) * 1000,
        "runs": len(lazy),
    }
    return results


def run(quick: bool = False) -> dict[str, Any]:
    scale = 4 if quick else 1
    started = time.time()
    result = {
        "machine": machine(),
        "warm": warm_latency(runs=2000 // scale, posts=1000 // scale, posts_10=100 // scale),
        "cold_import": cold_imports(runs=10 if not quick else 5),
    }
    result["machine_after"] = machine()
    result["seconds"] = round(time.time() - started, 1)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    path = write_result("webhook", run(args.quick))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
