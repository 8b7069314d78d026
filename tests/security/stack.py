"""The whole local stack in this process, for end-to-end security tests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magpie import ledger
from magpie.client import post_signed
from magpie.lake import LocalLake
from magpie.runtime import Runtime
from magpie.server import BackgroundServer

from chalicelib import backend
from tests.conftest import SECRET


@dataclass
class Stack:
    home: Path
    runtime: Runtime
    url: str

    def deliver(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST one signed delivery and wait until everything it caused has happened."""
        status, body = post_signed(self.url, json.dumps(payload).encode(), SECRET)
        assert status == 200, body
        assert self.runtime.wait_idle(timeout=120)
        return body

    def events(self, detail_type: str) -> list[dict[str, Any]]:
        return [
            envelope["detail"]
            for _, envelope in self.runtime.store.events_since(0)
            if envelope["detail-type"] == detail_type
        ]

    def outbox(self) -> list[dict[str, Any]]:
        return ledger.read_outbox(self.home / "outbox")

    def lake(self) -> list[dict[str, Any]]:
        return LocalLake(self.home / "lake").records()


@contextmanager
def running_stack(home: Path, monkeypatch: Any, **env: str) -> Iterator[Stack]:
    """Runtime and webhook under `home` (the local_env fixture's), VADER for speed."""
    monkeypatch.setenv("LOCAL_SENTIMENT", "vader")
    monkeypatch.setenv("MAGPIE_BUS_BASE_DELAY_MS", "20")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    backend.reset()
    with Runtime(home) as runtime, BackgroundServer() as server:
        yield Stack(home, runtime, server.url)


def now_ms() -> int:
    return int(time.time() * 1000)
