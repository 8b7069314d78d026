"""A crowd of idle sockets cannot keep X's delivery waiting at a real `magpie serve`.

At its connection limit waitress stops accepting until its sweep closes the connections
silent for READ_TIMEOUT seconds, and X wants an answer within 3. The server now sheds the
oldest idle connections at the limit, so the delivery is answered while most of the idle
crowd is still open (it would all have been swept first before), and the rest is still
closed by the sweep in the end.
"""

from __future__ import annotations

import select
import socket

import pytest
from magpie.client import post_signed
from magpie.server import CONNECTION_LIMIT, SHED_AT_LIMIT

from tests.conftest import SAMPLES, SECRET
from tests.local.test_serve import free_port, start_serve

CROWD = CONNECTION_LIMIT + 18


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed this connection (a read returns end of file)."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable) and closed_when_read(sock)


def closed_when_read(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.slow
def test_idle_sockets_are_shed_so_a_signed_delivery_is_answered(tmp_path):
    home, port = tmp_path / "home", free_port()
    process = start_serve(home, port)
    crowd: list[socket.socket] = []
    try:
        for _ in range(CROWD):
            crowd.append(socket.create_connection(("127.0.0.1", port)))
        body = (SAMPLES / "mention-plain.json").read_bytes()
        status, answer = post_signed(f"http://127.0.0.1:{port}/twitter", body, SECRET)
        assert (status, answer["messages"]) == (200, 1)
        # Answered after shedding a few idle sockets, not after the sweep closed them all.
        closed_first = sum(closed_by_server(sock) for sock in crowd)
        assert 1 <= closed_first <= SHED_AT_LIMIT + CROWD - CONNECTION_LIMIT + 2
        # And every idle socket is closed in the end (waitress's sweep, READ_TIMEOUT).
        for sock in crowd:
            sock.settimeout(60)
            assert closed_when_read(sock)
    finally:
        for sock in crowd:
            sock.close()
        process.terminate()
        process.wait(timeout=20)
