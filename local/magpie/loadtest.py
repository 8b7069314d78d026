"""`magpie loadtest`: concurrent signed deliveries against a local `magpie serve`, then the ledger.

This process is the client; `magpie serve` runs in a second process on 127.0.0.1 with a
fresh MAGPIE_HOME. Synthetic deliveries (mostly text mentions, some direct messages, a
share with photos from the bundled media mirror) are signed with the run's consumer secret
and posted by `concurrency` threads. A delivery answered 5xx or not answered at all is
retried, as X retries, until it is acknowledged or the run's deadline passes.

Reported: deliveries accepted per second, webhook latency (p50/p99 of the acknowledged
requests), the time until the last reply (from the first request until the bus is idle,
and until the last outbox file was written), and the ledger check (`magpie ledger`) with
every acknowledged message expected.

Bounded by design: loopback only, at most MAX_COUNT deliveries, and a deadline.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import random
import secrets
import signal
import socket
import subprocess  # starts `magpie serve` with fixed arguments  # nosec B404
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from chalicelib.ingress.signature import SIGNATURE_HEADER, sign
from magpie import ledger
from magpie.apps import ROOT

MAX_COUNT = 5000
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
BOT_USER_ID = "1876543210987654321"
BOT_SCREEN_NAME = "acme_helper_bot"
MEDIA_MIRROR = ROOT / "examples" / "media-mirror"
PHOTOS = (
    "https://pbs.twimg.com/media/HaXmP1aWAAEq3Zk.jpg",
    "https://pbs.twimg.com/media/HaXmP1bXsAAr7Lp.jpg",
)
TEXTS = (
    "tell me a joke please",
    "can you tell me a fact?",
    "hi! what can you do?",
    "this bot is useless and rude, I hate it",
    "good morning, how are you today?",
)
WARM_UP_REQUESTS = 50
ID_BASE = 3_000_000_000_000_000_000  # synthetic ids: 19 digits, like X's, never real ones


# --- synthetic deliveries -------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    body: bytes
    key: ledger.MessageKey  # (Kind, MessageId) of the message it carries
    photos: int


def synthetic_deliveries(
    count: int,
    *,
    seed: int = 1,
    image_share: float = 0.1,
    dm_share: float = 0.2,
    bot_user_id: str = BOT_USER_ID,
    id_offset: int = 0,
) -> list[Delivery]:
    """`count` deliveries of one message each; every author is different (so the per-author
    reply limit never applies) and every message is new (ReceivedAt is now)."""
    if not 0 < count <= MAX_COUNT:
        raise ValueError(f"count must be in 1..{MAX_COUNT}")
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    deliveries = []
    for index in range(count):
        number = ID_BASE + id_offset + index
        text = TEXTS[index % len(TEXTS)]
        photos = 0
        if rng.random() < image_share:
            photos = 2 if rng.random() < 0.25 else 1
        if rng.random() < dm_share:
            payload = dm_payload(number, text, photos, now_ms, bot_user_id)
            kind = "DIRECT_MESSAGE"
        else:
            payload = mention_payload(number, text, photos, now_ms, bot_user_id)
            kind = "MENTION"
        body = json.dumps(payload, separators=(",", ":")).encode()
        deliveries.append(Delivery(body, (kind, str(number)), photos))
    return deliveries


def _author(number: int) -> dict[str, str]:
    user_id = str(number + 1_000_000_000_000_000_000)
    return {"id_str": user_id, "screen_name": f"load_user_{number % 10_000_000}"}


def mention_payload(
    number: int,
    text: str,
    photos: int,
    now_ms: int,
    bot_user_id: str = BOT_USER_ID,
    *,
    author: dict[str, str] | None = None,
    in_reply_to: str | None = None,
) -> dict[str, Any]:
    """An Account Activity `tweet_create_events` delivery of one mention of the bot."""
    user = author or _author(number)
    media = [
        {"id_str": f"{number}{i}", "type": "photo", "media_url_https": PHOTOS[i % len(PHOTOS)]}
        for i in range(photos)
    ]
    tweet: dict[str, Any] = {
        "id_str": str(number),
        "text": f"@{BOT_SCREEN_NAME} {text}",
        "user": {"id_str": user["id_str"], "screen_name": user["screen_name"]},
        "entities": {"user_mentions": [{"id_str": bot_user_id, "screen_name": BOT_SCREEN_NAME}]},
        "in_reply_to_status_id_str": in_reply_to,
        "lang": "en",
        "timestamp_ms": str(now_ms),
    }
    if media:
        tweet["extended_entities"] = {"media": media}
    return {"for_user_id": bot_user_id, "tweet_create_events": [tweet]}


def dm_payload(
    number: int, text: str, photos: int, now_ms: int, bot_user_id: str = BOT_USER_ID
) -> dict[str, Any]:
    """An Account Activity `direct_message_events` delivery of one DM to the bot."""
    user = _author(number)
    data: dict[str, Any] = {"text": text}
    if photos:
        data["attachment"] = {
            "type": "media",
            "media": {"type": "photo", "media_url_https": PHOTOS[0]},
        }
    return {
        "for_user_id": bot_user_id,
        "direct_message_events": [
            {
                "type": "message_create",
                "id": str(number),
                "created_timestamp": str(now_ms),
                "message_create": {
                    "target": {"recipient_id": bot_user_id},
                    "sender_id": user["id_str"],
                    "message_data": data,
                },
            }
        ],
        "users": {user["id_str"]: {"id": user["id_str"], "screen_name": user["screen_name"]}},
    }


# --- the server under test ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_environment(home: Path, secret: str, **extra: str) -> dict[str, str]:
    """The environment of a `magpie serve` under test (inherits PATH, faults, sentiment...)."""
    env = dict(os.environ)
    env.update(
        {
            "MAGPIE_BACKEND": "local",
            "MAGPIE_HOME": str(home),
            "TWITTER_BOT_USER_ID": BOT_USER_ID,
            "TWITTER_API_SECRET": secret,
            "MAGPIE_MEDIA_MIRROR": str(MEDIA_MIRROR),
            "AWS_EC2_METADATA_DISABLED": "true",
            **extra,
        }
    )
    return env


class ServeProcess:
    """`magpie serve` in a child process on 127.0.0.1, with its output in home/serve-N.log."""

    def __init__(self, home: Path, port: int, env: dict[str, str]) -> None:
        self.home = home
        self.port = port
        self.env = env
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/twitter"

    def start(self, timeout: float = 60.0) -> ServeProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = (self.home / f"serve-{self.starts}.log").open("wb")
        command = [sys.executable, "-m", "magpie.cli", "--home", str(self.home), "serve"]
        self.process = subprocess.Popen(  # noqa: S603 (our own CLI, fixed args)  # nosec B603
            [*command, "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()  # the child holds its own copy
        self._wait_listening(timeout)
        return self

    def _wait_listening(self, timeout: float) -> None:
        process = self._started()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"magpie serve exited early; see {self.home}/serve-*.log")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.1)
        raise RuntimeError("magpie serve did not start listening")

    def kill9(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash."""
        process = self._started()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def _started(self) -> subprocess.Popen:
        if self.process is None:
            raise RuntimeError("magpie serve was never started")
        return self.process

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --- the client -----------------------------------------------------------------------------


@dataclass
class Attempt:
    status: int  # 0: no HTTP answer (refused, reset, timed out)
    seconds: float
    started: float = 0.0  # time.monotonic() when the request was sent


@dataclass
class DriveResult:
    attempts: list[Attempt] = field(default_factory=list)
    acknowledged: list[ledger.MessageKey] = field(default_factory=list)
    unacknowledged: list[ledger.MessageKey] = field(default_factory=list)
    started: float = 0.0
    last_ack: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def statuses(self) -> Counter:
        return Counter(a.status for a in self.attempts)


def post_once(url: str, body: bytes, secret: str, timeout: float = 30.0) -> int:
    """POST one signed delivery; the HTTP status, or 0 when no answer came."""
    request = urllib.request.Request(  # noqa: S310 (loopback http URL checked by the caller)
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return _status_of_refusal(exc)
    except (OSError, http.client.HTTPException):
        # Refused, reset, or an answer cut off mid-way (a server killed after its status line
        # raises IncompleteRead): X counts none of these as an acknowledgement, and retries.
        return 0


def _status_of_refusal(exc: urllib.error.HTTPError) -> int:
    """The status of a non-2xx answer, or 0 when its body was cut off (not a whole answer)."""
    try:
        exc.read()
    except (OSError, http.client.HTTPException):
        return 0
    return exc.code


def drive(
    url: str,
    secret: str,
    deliveries: Sequence[Delivery],
    *,
    concurrency: int = 8,
    deadline: float,
    copies: int = 1,
    on_ack: Callable[[int], None] | None = None,
) -> DriveResult:
    """Post every delivery (`copies` times each), retrying until acknowledged or `deadline`
    (time.monotonic()). `on_ack(n)` is called with the running count of acknowledgements."""
    check_loopback(url)
    result = DriveResult(started=time.monotonic())
    work = [d for d in deliveries for _ in range(copies)]

    def one(delivery: Delivery) -> None:
        acknowledged = _post_until_acknowledged(url, secret, delivery, deadline, result)
        with result._lock:
            (result.acknowledged if acknowledged else result.unacknowledged).append(delivery.key)
            if acknowledged:
                result.last_ack = time.monotonic()
            count = len(result.acknowledged)
        if acknowledged and on_ack is not None:
            on_ack(count)

    with ThreadPoolExecutor(concurrency, thread_name_prefix="loadtest") as pool:
        for future in [pool.submit(one, d) for d in work]:
            future.result()
    return result


def _post_until_acknowledged(
    url: str, secret: str, delivery: Delivery, deadline: float, result: DriveResult
) -> bool:
    backoff = 0.05
    while time.monotonic() < deadline:
        started = time.monotonic()
        status = post_once(url, delivery.body, secret)
        with result._lock:
            result.attempts.append(Attempt(status, time.monotonic() - started, started))
        if status == 200:
            return True
        if 400 <= status < 500:
            return False  # refused for good: X would not retry either
        time.sleep(backoff * random.uniform(0.5, 1.0))
        backoff = min(1.0, backoff * 2)
    return False


def check_loopback(url: str) -> None:
    """Load goes to this machine only."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        raise ValueError(f"load tests only target http://127.0.0.1 (loopback), not {url!r}")


# --- measuring ------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def last_outbox_write(home: Path) -> float | None:
    """Epoch seconds of the newest reply in the dry-run outbox."""
    stamps = [
        datetime.fromisoformat(r["written_at"].replace("Z", "+00:00")).timestamp()
        for r in ledger.read_outbox(home / "outbox")
        if r.get("written_at")
    ]
    return max(stamps) if stamps else None


@dataclass(frozen=True)
class LoadOptions:
    count: int = 300
    concurrency: int = 8
    image_share: float = 0.1
    dm_share: float = 0.2
    copies: int = 1
    timeout: float = 600.0
    seed: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)


def run_loadtest(home: Path, options: LoadOptions, out: Any = sys.stdout) -> dict[str, Any]:
    """Start `magpie serve` under `home`, drive it, wait for the last reply, check the ledger."""
    if home.exists() and any(home.iterdir()):
        raise ValueError(f"{home} is not empty: a load test needs a fresh MAGPIE_HOME")
    secret = secrets.token_urlsafe(32)
    deliveries = synthetic_deliveries(
        options.count,
        seed=options.seed,
        image_share=options.image_share,
        dm_share=options.dm_share,
    )
    env = serve_environment(home, secret, **options.extra_env)
    deadline = time.monotonic() + options.timeout
    with ServeProcess(home, free_port(), env) as server:
        print(f"magpie serve on {server.url}, home {home}", file=out, flush=True)
        wall_start = time.time()
        driven = drive(
            server.url,
            secret,
            deliveries,
            concurrency=options.concurrency,
            deadline=deadline,
            copies=options.copies,
        )
        accepted_s = driven.last_ack - driven.started
        idle = ledger.wait_until_idle(home, max(0.0, deadline - time.monotonic()))
        idle_s = time.monotonic() - driven.started
    report = ledger.check(home, expected=set(driven.acknowledged))
    last_reply = last_outbox_write(home)
    figures = _figures(options, deliveries, driven, accepted_s, idle, idle_s, report)
    figures["last_reply_s"] = round(last_reply - wall_start, 2) if last_reply else None
    print(format_figures(figures), file=out)
    print(ledger.format_report(report), file=out)
    return figures


def _figures(
    options: LoadOptions,
    deliveries: Sequence[Delivery],
    driven: DriveResult,
    accepted_s: float,
    idle: bool,
    idle_s: float,
    report: ledger.LedgerReport,
) -> dict[str, Any]:
    acknowledged = sorted((a for a in driven.attempts if a.status == 200), key=lambda a: a.started)
    latencies = [a.seconds for a in acknowledged]
    # The first requests also pay the server's warm-up (imports, SQLite files, first models).
    warm = latencies[WARM_UP_REQUESTS:]
    return {
        "deliveries": len(deliveries) * options.copies,
        "messages": len(deliveries),
        "with_photos": sum(1 for d in deliveries if d.photos),
        "concurrency": options.concurrency,
        "acknowledged": len(driven.acknowledged),
        "unacknowledged": len(driven.unacknowledged),
        "http_statuses": {str(k): v for k, v in sorted(driven.statuses().items())},
        "accepted_per_s": round(len(driven.acknowledged) / accepted_s, 1) if accepted_s else None,
        "latency_p50_ms": round(1000 * percentile(latencies, 0.50), 1),
        "latency_p99_ms": round(1000 * percentile(latencies, 0.99), 1),
        "latency_max_ms": round(1000 * max(latencies, default=0.0), 1),
        "latency_p99_after_warm_up_ms": round(1000 * percentile(warm, 0.99), 1),
        # X wants an answer within 3 s; slower acknowledgements risk a retry from X.
        "over_3s": sum(1 for seconds in latencies if seconds > 3.0),
        "bus_idle": idle,
        "all_done_s": round(idle_s, 2),
        "ledger": report.to_dict(),
        "cpus": os.cpu_count(),
    }


def format_figures(figures: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"deliveries: {figures['deliveries']} ({figures['messages']} messages, "
            f"{figures['with_photos']} with photos), {figures['concurrency']} concurrent clients",
            f"acknowledged: {figures['acknowledged']}, not acknowledged: "
            f"{figures['unacknowledged']}; HTTP statuses {figures['http_statuses']}",
            f"accepted: {figures['accepted_per_s']} deliveries/s; webhook latency p50 "
            f"{figures['latency_p50_ms']} ms, p99 {figures['latency_p99_ms']} ms, "
            f"max {figures['latency_max_ms']} ms; {figures['over_3s']} over 3 s; p99 after the "
            f"first {WARM_UP_REQUESTS} requests {figures['latency_p99_after_warm_up_ms']} ms",
            f"last reply written {figures.get('last_reply_s')} s after the first request; "
            f"bus idle after {figures['all_done_s']} s"
            + ("" if figures["bus_idle"] else " (NOT idle: deadline passed)"),
        ]
    )
