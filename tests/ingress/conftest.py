"""The real webhook (ingress app through chalice.test.Client, local backend), signed POSTs,
and what reached the bus and the local lake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from magpie.apps import load_app

from chalicelib import backend
from chalicelib.ingress.signature import SIGNATURE_HEADER, sign
from tests.conftest import SECRET
from tests.ops.lakedata import write_through_the_routes


class Webhook:
    def __init__(self, client: Client, home: Path) -> None:
        self.client = client
        self.home = home
        self._seen = 0

    def post(self, payload: dict[str, Any] | bytes) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(SECRET, body)}
        return self.client.http.post("/twitter", headers=headers, body=body)

    def published(self) -> list[dict[str, Any]]:
        """Envelopes put on the bus since the last call, written to the lake by its target."""
        store = backend.local_bus_store()
        new = [envelope for _, envelope in store.events_since(self._seen)]
        self._seen = store.last_seq()
        write_through_the_routes(self.home / "lake", new)
        return new

    def lake(self) -> list[dict[str, Any]]:
        """Every lake record: Magpie's events, then X's raw items (under x-raw/)."""
        from magpie.lake import LocalLake, raw_x_lake

        root = self.home / "lake"
        return LocalLake(root).records() + raw_x_lake(root).records()


@pytest.fixture
def webhook_for(local_env, monkeypatch):
    """A factory: the webhook of a bot with the given X user id."""
    clients: list[Client] = []

    def make(bot_id: str) -> Webhook:
        monkeypatch.setenv("TWITTER_BOT_USER_ID", bot_id)
        backend.reset()
        client = Client(load_app("ingress").app)
        clients.append(client)
        return Webhook(client.__enter__(), local_env)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def details(envelopes: list[dict[str, Any]], detail_type: str) -> list[dict[str, Any]]:
    return [e["detail"] for e in envelopes if e["detail-type"] == detail_type]


def detail_types(envelopes: list[dict[str, Any]]) -> list[str]:
    return sorted(e["detail-type"] for e in envelopes)
