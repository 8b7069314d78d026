"""Shared pieces of the reliability tests: a served runtime under test and its checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from magpie import ledger
from magpie.loadtest import ServeProcess, free_port, serve_environment

from chalicelib import faults
from chalicelib.bus.local import LocalBusStore
from tests.conftest import BOT_ID, ROOT

SECRET = "reliability-consumer-secret"
EVERY_PORT = "bus=0.2,blob=0.2,text=0.2,image=0.2,conversation=0.2,x=0.2"
# Put first on a server's PYTHONPATH, its sitecustomize gives the MAGPIE_TEST_* crash points.
CRASH_HOOK = Path(__file__).with_name("crash_hook")
CRASHED = 137
# `make chaos` runs these tests under many seeds and collects every ledger report they check.
# How long a run may take to settle is not a fixed time: a loaded machine (the suite runs
# beside LocalStack) is slow, not stuck. A bus that has not moved for STALL_SECONDS is stuck
# (a retry waits at most 30 s); SETTLE_CEILING only ends a run that moves for ever.
STALL_SECONDS = 120
SETTLE_CEILING = 1800

CHAOS_SEED = "MAGPIE_CHAOS_SEED"
CHAOS_REPORTS = "MAGPIE_CHAOS_REPORTS"


def chaos_seed(default: int) -> int:
    """The seed of a randomised run: `default` in `make test`, so a failure repeats; each
    `make chaos` run sets MAGPIE_CHAOS_SEED, and every use gets its own seed from it."""
    run = os.environ.get(CHAOS_SEED)
    return default if not run else int(run) * 1000 + default


def checked_ledger(home: Path, expected) -> ledger.LedgerReport:
    """`ledger.check`, and under `make chaos` the report kept for its table."""
    report = ledger.check(home, expected=expected)
    folder = os.environ.get(CHAOS_REPORTS)
    if folder:
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
        record = {"test": test, "seed": os.environ.get(CHAOS_SEED), **report.to_dict()}
        path = Path(folder) / f"{uuid.uuid4().hex}.json"
        path.write_text(json.dumps(record))
    return report


def settles(home: Path) -> bool:
    """Whether the bus under `home` becomes idle before it stalls (see STALL_SECONDS)."""
    return ledger.wait_until_idle(home, timeout=SETTLE_CEILING, poll=0.5, stall=STALL_SECONDS)


def served(home: Path, **env: str) -> ServeProcess:
    """A `magpie serve` under `home` (not started): small bus delays keep the run short, and
    the crash points are armed by MAGPIE_TEST_* variables in `env`."""
    settings = {
        "MAGPIE_BUS_BASE_DELAY_MS": "20",
        "LOCAL_SENTIMENT": "vader",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(CRASH_HOOK), os.environ.get("PYTHONPATH")])
        ),
        **env,
    }
    return ServeProcess(home, free_port(), serve_environment(home, SECRET, **settings))


def run_script(script: str, home: Path, *args: str, **env: str) -> int:
    """`script` in a child process on the local backend under `home`, with no fault plan;
    its exit code: 0, or CRASHED when a crash point fired. Anything else fails the test."""
    settings = {
        **os.environ,
        "MAGPIE_BACKEND": "local",
        "MAGPIE_HOME": str(home),
        "TWITTER_BOT_USER_ID": BOT_ID,
        "MAGPIE_BUS_BASE_DELAY_MS": "20",
        **env,
    }
    settings.pop("MAGPIE_FAULTS", None)
    child = subprocess.run(
        [sys.executable, "-c", script, str(home), *args],
        cwd=ROOT,
        env=settings,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if child.returncode not in (0, CRASHED):
        raise AssertionError(child.stderr[-3000:])
    return child.returncode


def restart_if_dead(server: ServeProcess) -> bool:
    """Start `server` again if its process has died (a crash point fired); True if it had."""
    process = server.process
    if process is None or process.poll() is None:
        return False
    server.start()
    return True


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


def finish_dead_letters(home: Path, env: dict[str, str], *, rounds: int = 5) -> list[int]:
    """Replay the dead letters until none is left (at most `rounds` times). Returns the
    count before each round."""
    counts = []
    for _ in range(rounds):
        count = dead_letter_count(home)
        counts.append(count)
        if count == 0:
            break
        replay_dead_letters(home, env)
    return counts


def injected_ports(home: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in faults.read_log(home):
        counts[entry["port"]] = counts.get(entry["port"], 0) + 1
    return counts
