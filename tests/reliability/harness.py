"""Shared pieces of the reliability tests: a served runtime under test and its checks."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from magpie.loadtest import ServeProcess, free_port, serve_environment

from chalicelib import faults
from chalicelib.bus.local import LocalBusStore
from chalicelib.idempotency import DEFAULT_IN_PROGRESS_MS
from tests.conftest import ROOT

SECRET = "reliability-consumer-secret"
EVERY_PORT = "bus=0.2,blob=0.2,text=0.2,image=0.2,conversation=0.2,x=0.2"
# The idempotency layer's in-progress marker outlives a crashed attempt by this much: a
# delivery killed mid-way can only be finished after it, so dead letters from the crash
# are replayed once it has passed.
IN_PROGRESS_EXPIRY_S = DEFAULT_IN_PROGRESS_MS / 1000


def served(home: Path, **env: str) -> ServeProcess:
    """A `magpie serve` under `home` (not started): small bus delays keep the run short."""
    settings = {"MAGPIE_BUS_BASE_DELAY_MS": "20", "LOCAL_SENTIMENT": "vader", **env}
    return ServeProcess(home, free_port(), serve_environment(home, SECRET, **settings))


def replay_dead_letters(home: Path, env: dict[str, str], timeout: float = 120) -> str:
    """`magpie replay --dead-letters` in its own process; returns its output."""
    result = subprocess.run(
        [sys.executable, "-m", "magpie.cli", "--home", str(home), "replay", "--dead-letters"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result.stdout + result.stderr


def dead_letter_count(home: Path) -> int:
    return len(LocalBusStore(home / "bus.sqlite3").dead_letters())


def finish_dead_letters(
    home: Path, env: dict[str, str], *, not_before: float, rounds: int = 5
) -> list[int]:
    """Replay the dead letters until none is left (at most `rounds` times), not before the
    monotonic time `not_before`. Returns the count before each round."""
    counts = []
    for _ in range(rounds):
        count = dead_letter_count(home)
        counts.append(count)
        if count == 0:
            break
        time.sleep(max(0.0, not_before - time.monotonic()))
        replay_dead_letters(home, env)
    return counts


def injected_ports(home: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in faults.read_log(home):
        counts[entry["port"]] = counts.get(entry["port"], 0) + 1
    return counts
