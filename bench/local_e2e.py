"""The whole local pipeline, end to end: webhook POST to the reply in the dry-run outbox.

`python -m bench.local_e2e` writes bench/results/local_e2e.json.

The real local stack, as `magpie serve` runs it: the ingress app behind its HTTP server
on 127.0.0.1, the durable SQLite bus and its dispatcher (MAGPIE_BUS_WORKERS threads), the
analysis orchestrator with the local models, the responders and egress writing the outbox.
Photos come from a media mirror (MAGPIE_MEDIA_MIRROR) holding the corpus's scenes.

Two workloads from the corpus: text only, and photo messages. For each:
* burst: every message POSTed back to back; throughput = messages / (last reply - first POST);
  latency = outbox `written_at` - POST time, so it includes queueing behind the burst;
* one at a time: POST, wait for the reply, next: the latency of an idle stack.
The models load once before measuring (reported as warm-up). A sampling profiler over every
thread says where the busy time goes (bench/sampler.py). Peak memory is each process's own
high-water mark (VmHWM, read from /proc at the end, so measuring costs nothing): this
process (the server) and its model worker; their sum bounds the two together.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import payloads
from bench.aws_cost import enrol_known_faces
from bench.environment import SCRATCH_DIR, machine, percentile, write_result
from bench.hostile_images import rss_kb
from bench.sampler import Sampler

SECRET = "bench-local-secret"  # noqa: S105 (made up)
BOT = payloads.corpus()["bot_user_id"]
OUTCOMES = ("TWEET_SENT", "TWEET_FAILED", "REPLY_SKIPPED", "MESSAGE_ANALYSIS_FAILED")


def _renumbered(messages: list[dict[str, Any]], offset: int) -> list[dict[str, Any]]:
    return [{**m, "id": str(int(m["id"]) + offset)} for m in messages]


class Stack:
    """The local stack under a fresh MAGPIE_HOME."""

    def __init__(self, home: Path, mirror: Path) -> None:
        from magpie.runtime import Runtime, configure_environment
        from magpie.server import BackgroundServer

        from chalicelib import backend

        configure_environment(
            home,
            TWITTER_BOT_USER_ID=BOT,
            TWITTER_API_SECRET=SECRET,
            MAGPIE_MEDIA_MIRROR=str(mirror),
        )
        enrol_known_faces(backend.face_gallery())
        backend.alert_sink().mute_console()  # alerts still land in alerts.jsonl
        self.home = home
        self.runtime = Runtime(home)
        self._seen = 0  # the last bus sequence number outcomes() read
        self._outcomes: dict[str, dict[str, Any]] = {}
        self.server = BackgroundServer()

    def __enter__(self) -> Stack:
        self.runtime.start()
        self.server.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.__exit__(*exc)
        self.runtime.stop()

    def post(self, message: dict[str, Any]) -> tuple[int, float]:
        from magpie.client import post_signed

        posted = time.time()
        status, _ = post_signed(self.server.url, payloads.delivery([message]), SECRET)
        return status, posted

    def outcomes(self) -> dict[str, dict[str, Any]]:
        """MessageId -> {"type", "sent_id"} for every outcome on the bus so far. Read on from
        where the last call stopped: decoding the whole bus every poll took about 8% of this
        process's samples, time the stack under test did not get."""
        for seq, envelope in self.runtime.store.events_since(self._seen):
            self._seen = seq
            if envelope["detail-type"] in OUTCOMES:
                detail = envelope["detail"]
                self._outcomes[str(detail.get("MessageId"))] = {
                    "type": envelope["detail-type"],
                    "sent_id": detail.get("SentId"),
                }
        return self._outcomes

    def replies(self) -> dict[str, float]:
        """sent_id -> when the outbox file was written (epoch seconds)."""
        from datetime import datetime

        written = {}
        for path in (self.home / "outbox").glob("*.json"):
            record = json.loads(path.read_text())
            moment = datetime.strptime(record["written_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
            from datetime import UTC

            written[record["sent_id"]] = moment.replace(tzinfo=UTC).timestamp()
        return written

    def peak_memory_mb(self) -> dict[str, int]:
        """The high-water marks of this process and of the model worker (0 if none ran)."""
        import os

        from chalicelib.analysis.model_worker import shared_worker

        worker = shared_worker().pid
        peaks = {
            "server": rss_kb(os.getpid(), "VmHWM") // 1024,
            "worker": rss_kb(worker, "VmHWM") // 1024 if worker else 0,
        }
        return {**peaks, "sum": peaks["server"] + peaks["worker"]}

    def wait(self, ids: set[str], timeout: float) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if ids <= self.outcomes().keys():
                return True
            time.sleep(0.05)
        return False


def _latencies(
    stack: Stack, posted: dict[str, float]
) -> tuple[list[float], dict[str, int], float, float]:
    """Per message: reply written - POST; the outcomes; when the first and last replies came."""
    outcomes, replies = stack.outcomes(), stack.replies()
    latencies, tally, first, last = [], {}, float("inf"), 0.0
    for message_id, t0 in posted.items():
        outcome = outcomes.get(message_id, {"type": "NO_OUTCOME", "sent_id": None})
        tally[outcome["type"]] = tally.get(outcome["type"], 0) + 1
        written = replies.get(outcome["sent_id"] or "")
        if written is not None:
            latencies.append(written - t0)
            first, last = min(first, written), max(last, written)
    return latencies, tally, first, last


def _summary(latencies: list[float]) -> dict[str, Any]:
    if not latencies:
        return {"n": 0}
    return {
        "n": len(latencies),
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": percentile([x * 1000 for x in latencies], 95),
        "max_ms": max(latencies) * 1000,
    }


def workload(
    name: str, messages: list[dict[str, Any]], sequential: int, timeout: float
) -> dict[str, Any]:
    SCRATCH_DIR.mkdir(parents=True, exist_ok=True)
    load_before = machine()["load_average_1_5_15"][0]
    with tempfile.TemporaryDirectory(prefix=f"bench-e2e-{name}-", dir=SCRATCH_DIR) as tmp:
        home, mirror = Path(tmp) / "home", Path(tmp) / "mirror"
        warm = _renumbered(messages[:2], 7)
        burst = messages[2 : len(messages) - sequential]
        alone = messages[len(messages) - sequential :]
        payloads.write_media_mirror(mirror, warm + messages)
        with Stack(home, mirror) as stack:
            t0 = time.time()
            for message in warm:
                stack.post(message)
            stack.wait({m["id"] for m in warm}, timeout)
            warm_up = time.time() - t0
            # One at a time first: the idle stack's latency.
            alone_posted = {}
            for message in alone:
                _, alone_posted[message["id"]] = stack.post(message)
                stack.wait({message["id"]}, timeout)
            alone_latency, _, _, _ = _latencies(stack, alone_posted)
            posted, statuses = {}, []
            with Sampler() as sampler:
                first = time.time()
                for message in burst:
                    status, posted[message["id"]] = stack.post(message)
                    statuses.append(status)
                done = stack.wait(set(posted), timeout)
            memory = stack.peak_memory_mb()
            latencies, tally, first_reply, last = _latencies(stack, posted)
            dead = len(stack.runtime.store.dead_letters())
    elapsed = (last or time.time()) - first
    photos = sum(len(m["images"]) for m in burst)
    return {
        "messages": len(burst),
        "photos": photos,
        "all_answered": done,
        "http_status": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "outcomes": tally,
        "dead_letters": dead,
        "load_average_1min": [load_before, machine()["load_average_1_5_15"][0]],
        "warm_up_seconds": round(warm_up, 2),
        "burst_seconds": round(elapsed, 2),
        "messages_per_second": len(burst) / elapsed if elapsed > 0 else None,
        # Work closest to done runs first, so the burst's first reply does not wait for
        # every message of the burst to be analysed.
        "first_reply_after_seconds": round(first_reply - first, 2) if latencies else None,
        "workers": stack.runtime.dispatcher.workers,
        "burst_latency": _summary(latencies),
        "one_at_a_time_latency": _summary(alone_latency),
        "peak_rss_mb": memory,
        "profile": sampler.report(),
    }


def run(quick: bool = False, only: tuple[str, ...] = ("text", "photos")) -> dict[str, Any]:
    corpus = payloads.messages()
    text = [m for m in corpus if not m["images"]]
    photo = [m for m in corpus if m["images"]]
    sizes = {"text": (40, 5), "photos": (14, 3)} if quick else {"text": (80, 8), "photos": (26, 4)}
    started = time.time()
    result: dict[str, Any] = {"machine": machine()}
    for name, pool in (("text", text), ("photos", photo)):
        if name not in only:
            continue
        count, sequential = sizes[name]
        print(f"  local e2e: {name} ({count} messages)...", flush=True)
        result[name] = workload(name, pool[:count], sequential, timeout=600)
        r = result[name]
        print(
            f"    {r['messages_per_second']:.2f} msg/s, "
            f"p50 {r['burst_latency'].get('p50_ms', 0):.0f} ms, "
            f"idle p50 {r['one_at_a_time_latency'].get('p50_ms', 0):.0f} ms, "
            f"peak RSS {r['peak_rss_mb']['sum']} MB",
            flush=True,
        )
    result["machine_after"] = machine()
    result["seconds"] = round(time.time() - started, 1)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="text,photos", help="text, photos or both")
    parser.add_argument("--name", default="local_e2e", help="results file name")
    args = parser.parse_args(argv)
    path = write_result(args.name, run(args.quick, tuple(args.only.split(","))))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
