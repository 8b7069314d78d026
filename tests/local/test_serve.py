"""The local runtime over real HTTP on 127.0.0.1, including kill -9 and restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from magpie.client import post_signed
from magpie.lake import LocalLake, raw_x_lake

from chalicelib.ingress.signature import sign
from tests.conftest import BOT_ID, ROOT, SAMPLES, SECRET

MAGPIE = [sys.executable, "-m", "magpie.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early: {process.stderr.read().decode()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start listening")


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "MAGPIE_HOME": str(home),
            "TWITTER_BOT_USER_ID": BOT_ID,
            "TWITTER_API_SECRET": SECRET,
            "MAGPIE_BACKEND": "local",
            **extra,
        }
    )
    env.pop("MAGPIE_MEDIA_MIRROR", None)
    return env


def start_serve(home: Path, port: int, *flags: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [*MAGPIE, "--home", str(home), "serve", "--port", str(port), *flags],
        env=env_for(home),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for_port(port, process)
    return process


def lake_types(home: Path) -> list[str]:
    """The detail-types of every lake record: Magpie's events and X's raw items (x-raw/)."""
    lakes = (LocalLake(home / "lake"), raw_x_lake(home / "lake"))
    return sorted(r["detail-type"] for lake in lakes for r in lake.records())


def wait_for_lake(home: Path, expected: list[str], timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = lake_types(home)
        if all(found.count(t) >= expected.count(t) for t in set(expected)):
            return found
        time.sleep(0.2)
    return lake_types(home)


@pytest.fixture
def server(tmp_path):
    home, port = tmp_path / "home", free_port()
    process = start_serve(home, port)
    yield home, f"http://127.0.0.1:{port}/twitter"
    process.terminate()
    process.wait(timeout=20)


@pytest.mark.slow
def test_crc_and_signed_post_over_http(server):
    home, url = server
    with urllib.request.urlopen(url + "?crc_token=abc", timeout=10) as response:
        assert json.loads(response.read()) == {"response_token": sign(SECRET, b"abc")}
    status, body = post_signed(url, (SAMPLES / "mention-plain.json").read_bytes(), SECRET)
    assert (status, body["messages"]) == (200, 1)
    assert "MESSAGE_RECEIVED" in wait_for_lake(home, ["MESSAGE_RECEIVED", "TWITTER_TWEETED"])


@pytest.mark.slow
def test_magpie_send_signs_with_the_configured_secret(server):
    home, url = server
    result = subprocess.run(
        [*MAGPIE, "--home", str(home), "send", str(SAMPLES / "direct-message.json"), "--url", url],
        env=env_for(home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == 200


@pytest.mark.slow
def test_acknowledged_events_survive_kill_9_and_are_delivered_after_restart(tmp_path):
    home, port = tmp_path / "home", free_port()
    url = f"http://127.0.0.1:{port}/twitter"
    # Accept-only: events are acknowledged onto the durable bus and nothing is delivered yet.
    process = start_serve(home, port, "--no-dispatch")
    acknowledged = []
    for name in ("mention-plain.json", "direct-message.json", "follow.json"):
        status, _ = post_signed(url, (SAMPLES / name).read_bytes(), SECRET)
        acknowledged.append(status)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert acknowledged == [200, 200, 200]
    assert lake_types(home) == []

    restarted = start_serve(home, port)
    try:
        # Every acknowledged event is delivered, and both messages get their one reply.
        expected = [
            "MESSAGE_RECEIVED",
            "MESSAGE_RECEIVED",
            "TWITTER_DM_RECEIVED",
            "TWITTER_FOLLOWED",
            "TWITTER_TWEETED",
            "TWEET_SENT",
            "TWEET_SENT",
        ]
        found = wait_for_lake(home, expected, timeout=120)
        for detail_type in set(expected):
            assert found.count(detail_type) == expected.count(detail_type), found
    finally:
        restarted.terminate()
        restarted.wait(timeout=20)


@pytest.mark.slow
def test_serve_without_bot_id_fails_naming_the_variable(tmp_path):
    env = env_for(tmp_path)
    env.pop("TWITTER_BOT_USER_ID")
    result = subprocess.run(
        [*MAGPIE, "serve", "--port", str(free_port())],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3  # ConfigurationError.exit_code
    assert "TWITTER_BOT_USER_ID" in result.stderr


@pytest.mark.slow
def test_chalice_local_answers_the_crc_with_the_environment_secret(tmp_path):
    port = free_port()
    chalice = Path(sys.executable).parent / "chalice"
    process = subprocess.Popen(
        [str(chalice), "local", "--port", str(port)],
        cwd=ROOT / "ingress",
        env=env_for(tmp_path / "home", TWITTER_API_SECRET="chalice-local-secret"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, process)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/twitter?crc_token=xyz", timeout=10
        ) as response:
            body = json.loads(response.read())
        assert body == {"response_token": sign("chalice-local-secret", b"xyz")}
    finally:
        process.terminate()
        process.wait(timeout=20)


def stop(process: subprocess.Popen) -> tuple[str, str]:
    process.terminate()
    out, err = process.communicate(timeout=30)
    return out.decode(), err.decode()


def modes_under(home: Path) -> dict[str, int]:
    return {
        str(path.relative_to(home)): path.stat().st_mode & 0o777
        for path in home.rglob("*")
        if not path.is_symlink()
    }


@pytest.mark.slow
def test_serve_keeps_magpie_home_private(tmp_path):
    home, port = tmp_path / "home", free_port()
    home.mkdir(mode=0o755)  # an existing, world-readable folder is tightened too
    process = start_serve(home, port)
    try:
        url = f"http://127.0.0.1:{port}/twitter"
        for name in ("mention-plain.json", "direct-message.json"):
            assert post_signed(url, (SAMPLES / name).read_bytes(), SECRET)[0] == 200
        wait_for_lake(home, ["MESSAGE_RECEIVED", "MESSAGE_RECEIVED", "TWEET_SENT", "TWEET_SENT"])
    finally:
        stop(process)
    assert home.stat().st_mode & 0o777 == 0o700
    modes = modes_under(home)
    assert any(name.startswith("lake/") for name in modes)
    assert any(name.startswith("outbox/") for name in modes)
    loose = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode & 0o077 or mode != (0o700 if (home / name).is_dir() else 0o600)
    }
    assert loose == {}


def poll_dashboard(port: int, times: int = 3) -> None:
    for _ in range(times):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/summary", timeout=10) as r:
            assert r.status == 200


@pytest.mark.slow
def test_serve_logs_no_line_per_request_by_default(tmp_path):
    home, port = tmp_path / "home", free_port()
    process = start_serve(home, port)
    poll_dashboard(port)
    out, err = stop(process)
    assert "/api/summary" not in out + err


@pytest.mark.slow
def test_serve_verbose_logs_one_line_per_request(tmp_path):
    home, port = tmp_path / "home", free_port()
    process = start_serve(home, port, "-v")
    poll_dashboard(port)
    out, err = stop(process)
    lines = [line for line in (out + err).splitlines() if "GET /api/summary 200" in line]
    assert len(lines) == 3, out + err


def send_raw(port: int, request: bytes) -> int:
    """The status of the answer to `request`, sent as is (no client library tidies it up)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return int(sock.recv(65536).split(b" ", 2)[1])


def wait_for_alerts(home: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (home / "alerts.jsonl").exists() and (home / "alerts.jsonl").read_text().strip():
            return
        time.sleep(0.2)
    raise AssertionError("no alert was raised")


@pytest.mark.slow
def test_serve_counts_refused_calls_quietly_and_its_alerts_stand_out(tmp_path):
    home, port = tmp_path / "home", free_port()
    process = start_serve(home, port)
    try:
        url = f"http://127.0.0.1:{port}/twitter"
        negative = (ROOT / "examples" / "webhooks" / "mention-negative.json").read_bytes()
        assert post_signed(url, negative, SECRET)[0] == 200
        head = b"POST /twitter HTTP/1.1\r\nContent-Type: application/json\r\n"
        ours, theirs = b"Host: 127.0.0.1\r\n", b"Host: attacker.example\r\n"
        unsigned = b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        refusals = {
            413: head + ours + b"Content-Length: 200000000\r\n\r\n",
            400: head + ours + b"Content-Length: abc\r\n\r\n",
            401: head + ours + unsigned,
            421: head + theirs + unsigned,
        }
        assert {status: send_raw(port, request) for status, request in refusals.items()} == {
            status: status for status in refusals
        }
        poll_dashboard(port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/summary", timeout=10) as r:
            webhook = json.loads(r.read())["health"]["Webhook"]
        assert webhook["ByStatus"] == {"200": 1, "400": 1, "401": 1, "413": 1, "421": 1}
        assert sorted(r["Status"] for r in webhook["LatestRefusals"] if r["Reason"]) == sorted(
            refusals
        )
        wait_for_alerts(home)
    finally:
        out, err = stop(process)
    lines = (out + err).splitlines()
    assert any(line.startswith("ALERT [NEGATIVE_MESSAGE]") for line in lines), out + err
    # Quiet: beside the start-up lines and the alert, only warnings and errors, none of
    # them a line per request answered.
    chatter = [
        line
        for line in lines
        if not line.startswith(("Serving ", "Using the generated", "ALERT "))
        and " WARNING " not in line
        and " ERROR " not in line
    ]
    assert chatter == []
    assert not any("/api/summary" in line or " 413" in line for line in lines), out + err
