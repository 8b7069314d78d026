"""`magpie serve`'s HTTP front under hostile or heavy traffic, over real sockets.

The server is the one `magpie serve` runs (waitress, in this process, port 0); requests
are written byte by byte where a client library would tidy them up.
"""

from __future__ import annotations

import copy
import http.client
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from magpie.dashboard.health import WEBHOOK_CALLS
from magpie.server import READ_TIMEOUT, BackgroundServer, allowed_hosts, host_name

from chalicelib.config import ConfigError
from chalicelib.ingress.signature import SIGNATURE_HEADER, sign
from chalicelib.ingress.webhook import MAX_BODY_BYTES
from tests.conftest import SECRET, load_sample


@pytest.fixture
def server(local_env):
    WEBHOOK_CALLS.reset()  # one counter per process: each test reads its own calls
    with BackgroundServer() as running:
        yield running


def raw(server, request: bytes, *, timeout: float = 10) -> bytes:
    """Send `request` as is and read until the server closes or goes quiet."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received and _complete(received):
                    break
        except TimeoutError:
            pass
        return received


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def delivery(n: int) -> bytes:
    payload = copy.deepcopy(load_sample("mention-plain.json"))
    tweet = payload["tweet_create_events"][0]
    tweet["id"], tweet["id_str"] = 5_000_000 + n, str(5_000_000 + n)
    return json.dumps(payload).encode()


def post(server, body: bytes, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(SECRET, body)}
    if host is not None:
        headers["Host"] = host
    try:
        connection.request("POST", "/twitter", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def get(server, path: str, host: str) -> tuple[int, bytes]:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    response = raw(server, request)
    return status_of(response), response.partition(b"\r\n\r\n")[2]


# --- bursts -------------------------------------------------------------------------------


def test_64_concurrent_signed_deliveries_are_all_answered_200(server):
    bodies = [delivery(n) for n in range(64)]
    with ThreadPoolExecutor(max_workers=64) as pool:
        answers = list(pool.map(lambda body: post(server, body), bodies))
    assert [status for status, _, _ in answers] == [200] * 64
    assert all(json.loads(body)["messages"] == 1 for _, _, body in answers)


# --- what is refused before the body is read ----------------------------------------------


def test_an_oversized_content_length_is_413_without_sending_the_body(server):
    # Only the headers go out: the answer cannot depend on reading 200 MB.
    started = time.monotonic()
    response = raw(
        server,
        b"POST /twitter HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200000000\r\n\r\n",
    )
    assert status_of(response) == 413
    assert time.monotonic() - started < READ_TIMEOUT


def test_a_body_at_the_webhooks_limit_reaches_the_app(server):
    # One byte under waitress's cut-off: the app reads it and answers (401: not signed).
    body = b"{" + b" " * (MAX_BODY_BYTES - 2) + b"}"
    response = raw(
        server,
        b"POST /twitter HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body,
    )
    assert status_of(response) == 401


@pytest.mark.parametrize(
    "header",
    [b"Content-Length: abc", b"Content-Length: -1", b"Content-Length: 1e3", b"Bad Header\x00: x"],
)
def test_malformed_headers_are_400_without_a_traceback(server, header):
    response = raw(
        server, b"POST /twitter HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header + b"\r\n\r\n{}"
    )
    assert status_of(response) == 400
    assert b"Traceback" not in response and b'File "' not in response


def test_the_server_header_names_no_python_or_server_version(server):
    status, headers, _ = post(server, delivery(1))
    assert status == 200
    assert headers["Server"] == "magpie"
    assert "python" not in json.dumps(headers).lower()


# --- what the dashboard counts --------------------------------------------------------------


def webhook_health(server) -> dict:
    status, body = get(server, "/api/summary", "127.0.0.1")
    assert status == 200
    return json.loads(body)["health"]["Webhook"]


def test_the_fronts_refusals_are_counted_with_the_apps_and_their_reasons(server):
    head = b"POST /twitter HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    # waitress answers these two itself: the app never sees them.
    assert status_of(raw(server, head + b"Content-Length: 200000000\r\n\r\n")) == 413
    assert status_of(raw(server, head + b"Content-Length: abc\r\n\r\n{}")) == 400
    # The app answers these two: unsigned, and for a host not ours.
    unsigned = raw(server, head + b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    assert status_of(unsigned) == 401
    assert post(server, delivery(4), host="attacker.example")[0] == 421
    # A malformed request to the dashboard is not a webhook call (one whose path cannot be
    # read is counted: it may be one).
    dashboard = b"GET /api/summary HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n"
    assert status_of(raw(server, dashboard)) == 400

    webhook = webhook_health(server)
    assert webhook["ByStatus"] == {"400": 1, "401": 1, "413": 1, "421": 1}
    assert webhook["Total"] == webhook["Refused"] == 4
    reasons = {r["Status"]: r["Reason"] for r in webhook["LatestRefusals"]}
    assert reasons == {
        413: "over the size limit",
        400: "malformed request or unreadable payload",
        401: "invalid signature",
        421: "host not allowed",
    }


def test_an_app_that_raises_is_counted_once_as_the_500_the_front_answers(local_env, monkeypatch):
    import magpie.server

    def broken(environ, start_response):
        raise RuntimeError("a bug")

    monkeypatch.setattr(magpie.server, "route", lambda dashboard, webhook: broken)
    WEBHOOK_CALLS.reset()
    with BackgroundServer() as server:
        response = post(server, delivery(5))
    assert response[0] == 500 and b"a bug" not in response[2]
    snapshot = WEBHOOK_CALLS.snapshot()
    assert snapshot["ByStatus"] == {"500": 1}
    assert snapshot["LatestRefusals"][0]["Reason"] == "server error"


# --- slow clients -------------------------------------------------------------------------


def test_half_sent_requests_are_dropped_and_do_not_block_others(server):
    stalled = []
    for _ in range(50):
        sock = socket.create_connection((server.host, server.port), timeout=READ_TIMEOUT * 4)
        sock.sendall(b"POST /twitter HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n")
        stalled.append(sock)
    try:
        # The stalled clients hold sockets, not the threads that answer others.
        started = time.monotonic()
        assert post(server, delivery(2))[0] == 200
        assert time.monotonic() - started < 2
        # And each stalled request is answered 408 and closed after READ_TIMEOUT (plus the
        # sweep), and counted for the dashboard.
        closed_after = []
        for sock in stalled:
            assert status_of(read_to_end(sock)) == 408
            closed_after.append(time.monotonic() - started)
        assert max(closed_after) < READ_TIMEOUT + 3
    finally:
        for sock in stalled:
            sock.close()
    webhook = webhook_health(server)
    assert webhook["ByStatus"] == {"200": 1, "408": 50}
    assert webhook["LatestRefusals"][0]["Reason"] == "request not received whole in time"


def read_to_end(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_request_trickled_a_byte_at_a_time_is_closed_after_the_read_timeout(server):
    request = b"POST /twitter HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 20
    with socket.create_connection((server.host, server.port), timeout=0.5) as sock:
        started, closed_after = time.monotonic(), None
        for byte in request:  # never silent for more than 0.5 s
            try:
                sock.sendall(bytes([byte]))
                answer = sock.recv(1024)  # the 408, or the close
                if answer == b"" or answer.startswith(b"HTTP/1.0 408 "):
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                time.sleep(0)  # nothing from the server yet: keep trickling
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, "the trickling client was never cut off"
    assert READ_TIMEOUT <= closed_after < READ_TIMEOUT + 4


def test_a_request_begun_in_the_same_packet_as_the_end_of_another_gets_its_own_time(server):
    first, second = delivery(6), delivery(7)
    head = b"POST /twitter HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"

    def request(body: bytes) -> bytes:
        return (
            head
            + f"{SIGNATURE_HEADER}: {sign(SECRET, body)}\r\n".encode()
            + (f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        )

    one, two = request(first), request(second)
    with socket.create_connection((server.host, server.port), timeout=READ_TIMEOUT * 3) as sock:
        sock.sendall(one[:20])
        time.sleep(READ_TIMEOUT * 0.7)  # the first request is slow, but in time
        sock.sendall(one[20:] + two[:20])  # its end, and the second's beginning
        for part in (two[20:40], two[40:]):  # the second is in time too, from its start
            time.sleep(READ_TIMEOUT * 0.25)
            sock.sendall(part)
        answers = b""
        while answers.count(b"HTTP/1.1 ") < 2 and (chunk := sock.recv(65536)):
            answers += chunk
    assert [int(part.split(b" ", 1)[0]) for part in answers.split(b"HTTP/1.1 ")[1:]] == [200, 200]


# --- Host: DNS rebinding ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/summary", "/dashboard/", "/api/events?after=0"])
def test_the_dashboard_refuses_a_foreign_host(server, path):
    status, body = get(server, path, "attacker.example")
    assert status == 421
    assert b"host not allowed" in body


def test_the_dashboard_answers_the_bound_address_and_localhost(server):
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "LOCALHOST."):
        assert get(server, "/api/summary", host)[0] == 200, host


def test_a_signed_delivery_with_a_foreign_host_is_refused(server):
    assert post(server, delivery(3), host="attacker.example")[0] == 421
    assert post(server, delivery(3), host="127.0.0.1.attacker.example")[0] == 421


def test_a_refused_host_is_logged_once_with_the_setting_to_change(server, caplog):
    for _ in range(3):
        assert get(server, "/api/summary", "tunnel.example.net")[0] == 421
    warnings = [r.getMessage() for r in caplog.records if "tunnel.example.net" in r.getMessage()]
    assert len(warnings) == 1 and "MAGPIE_ALLOWED_HOSTS" in warnings[0]


def test_a_request_without_host_is_refused(server):
    response = raw(server, b"GET /api/summary HTTP/1.0\r\n\r\n")
    assert status_of(response) == 421


def test_a_configured_name_is_answered(local_env, monkeypatch):
    monkeypatch.setenv("MAGPIE_ALLOWED_HOSTS", "bot.example.org, Magpie.Example.net")
    from chalicelib.config import reset_settings

    reset_settings()
    with BackgroundServer() as server:
        assert get(server, "/api/summary", "bot.example.org")[0] == 200
        assert get(server, "/api/summary", "magpie.example.net:443")[0] == 200
        assert get(server, "/api/summary", "example.org")[0] == 421


def test_a_wildcard_bind_needs_configured_names():
    with pytest.raises(ConfigError, match="MAGPIE_ALLOWED_HOSTS"):
        allowed_hosts("0.0.0.0")
    assert allowed_hosts("0.0.0.0", ["bot.example.org"]) == {"bot.example.org"}
    assert "localhost" in allowed_hosts("::1")
    assert "localhost" not in allowed_hosts("192.0.2.7")


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("example.org", "example.org"),
        ("Example.ORG:8000", "example.org"),
        ("[::1]:8642", "::1"),
        ("example.org.", "example.org"),
        ("", None),
        ("a@example.org", None),
        ("example.org/x", None),
        ("example.org:port", None),
        ("[::1", None),
    ],
)
def test_host_name_reads_the_header_strictly(header, name):
    assert host_name(header) == name
