"""`magpie loadtest`: its pieces, and one small run end to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest
from magpie.loadtest import (
    MAX_COUNT,
    check_loopback,
    drive,
    percentile,
    post_once,
    synthetic_deliveries,
)

from tests.conftest import ROOT


def test_synthetic_deliveries_are_distinct_signed_ready_messages():
    deliveries = synthetic_deliveries(200, seed=5, image_share=0.2, dm_share=0.3)
    keys = [d.key for d in deliveries]
    assert len(set(keys)) == 200
    kinds = {kind for kind, _ in keys}
    assert kinds == {"MENTION", "DIRECT_MESSAGE"}
    assert 10 < sum(1 for d in deliveries if d.photos) < 80
    authors = set()
    for delivery in deliveries:
        payload = json.loads(delivery.body)
        item = (payload.get("tweet_create_events") or payload.get("direct_message_events"))[0]
        authors.add(json.dumps(item.get("user") or item["message_create"]["sender_id"]))
    assert len(authors) == 200  # one author each: the per-author limit never applies
    assert synthetic_deliveries(200, seed=5, image_share=0.2, dm_share=0.3)[7].key == keys[7]


def _server_that_answers(head: bytes) -> tuple[str, threading.Thread]:
    """A one-connection HTTP server that reads the request, sends `head`, and closes: what a
    `magpie serve` killed with -9 half-way through its answer leaves the client holding."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with listener, listener.accept()[0] as connection:
            connection.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head_part, _, body = request.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head_part.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += connection.recv(65536)
            connection.sendall(head)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{port}/webhooks/twitter", thread


@pytest.mark.parametrize(
    "head",
    [
        b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"ok"',  # body cut off
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\n{",  # refusal cut off
        b"HTTP/1.1 20",  # status line cut off
        b"",  # closed before a status line
    ],
    ids=["body", "refusal-body", "status-line", "nothing"],
)
def test_an_answer_cut_off_by_a_killed_server_is_no_acknowledgement(head):
    url, server = _server_that_answers(head)
    assert post_once(url, b'{"for_user_id":"1"}', "secret", timeout=5) == 0
    server.join(timeout=5)


def test_a_whole_answer_is_its_status():
    url, server = _server_that_answers(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    assert post_once(url, b"{}", "secret", timeout=5) == 200
    server.join(timeout=5)


@pytest.mark.parametrize("count", [0, MAX_COUNT + 1])
def test_the_count_is_bounded(count):
    with pytest.raises(ValueError):
        synthetic_deliveries(count)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/twitter",
        "http://10.0.0.1:8000/twitter",
        "https://127.0.0.1/twitter",
        "http://127.0.0.1.nip.io/twitter",
    ],
)
def test_load_goes_to_loopback_only(url):
    with pytest.raises(ValueError, match="loopback"):
        check_loopback(url)
    with pytest.raises(ValueError, match="loopback"):
        drive(url, "s", synthetic_deliveries(1), deadline=0)


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile([], 0.5)) == (
        50.0,
        99.0,
        0.0,
    )


@pytest.mark.slow
def test_a_small_load_test_reports_its_figures_and_a_holding_ledger(tmp_path):
    figures_path = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, "-m", "magpie.cli", "loadtest", "--fresh-home", str(tmp_path / "home"),
         "--count", "30", "--concurrency", "4", "--image-share", "0", "--json",
         str(figures_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "LOCAL_SENTIMENT": "vader"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(figures_path.read_text())
    assert figures["acknowledged"] == 30 and figures["unacknowledged"] == 0
    assert figures["accepted_per_s"] > 0
    assert 0 < figures["latency_p50_ms"] <= figures["latency_p99_ms"] <= figures["latency_max_ms"]
    assert figures["ledger"]["holds"] and figures["ledger"]["states"] == {"sent": 30}
    assert figures["last_reply_s"] is not None and figures["last_reply_s"] > 0
    assert "the ledger holds" in result.stdout
