"""LocalStack's lifecycle: a start that fails says why, a stop always ends the whole group."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import emulator
import pytest
from emulator import Emulator, EmulatorError

# Ignores SIGTERM (as LocalStack once did) and starts a child that ignores it too.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"])
print(child.pid, flush=True)
time.sleep(120)
"""


def _emulator(tmp_path: Path) -> Emulator:
    return Emulator(
        python=Path(sys.executable),
        lambda_python=Path(sys.executable),
        dynalite=tmp_path / "dynalite",
        workdir=tmp_path,
    )


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie child of ours still answers kill(0); reap-state is what matters
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] == "Z"


def test_a_stop_that_sigterm_cannot_end_kills_the_whole_group(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(emulator, "STOP_GRACE_SECONDS", 0.5)
    process = subprocess.Popen(
        [sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    child = int(process.stdout.readline())
    running = _emulator(tmp_path)
    running.process = process
    started = time.monotonic()

    running.stop()

    assert process.poll() is not None
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child)
    assert running.process is None


def test_a_start_that_exits_says_so_with_the_logs_tail(tmp_path, monkeypatch) -> None:
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/sh\necho 'No module named cbor2._decoder' >&2\nexit 3\n")
    fake.chmod(0o755)
    starting = _emulator(tmp_path)
    starting.python = fake

    with pytest.raises(EmulatorError, match=r"exited \(3\)[\s\S]*cbor2\._decoder"):
        starting.start()
    assert starting.process is None


def test_localstack_listens_on_loopback_only(tmp_path) -> None:
    environment = _emulator(tmp_path).environment()

    assert environment["GATEWAY_LISTEN"].startswith("127.0.0.1:")
    assert environment["LOCALSTACK_HOST"] == environment["GATEWAY_LISTEN"]
    assert environment["LAMBDA_RUNTIME_EXECUTOR"] == "magpie-host"
