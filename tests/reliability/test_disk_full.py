"""`magpie serve` on a 20 MB disk that fills up, then gets space back: nothing lost, nothing
parked, no hot loop, no torn lake record, SQLite intact, and no command run by anyone.

The test mounts its own tmpfs as MAGPIE_HOME (CI runs as root) and unmounts it at the end.
The server's log goes outside that disk, so that what it logs while the disk is full can be
counted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from magpie import ledger
from magpie.lake import LocalLake, TornLines
from magpie.loadtest import drive, synthetic_deliveries

from chalicelib.bus.local import LocalBusStore
from tests.reliability.harness import SECRET, chaos_seed, checked_ledger, served, settles

BEFORE, DURING = 20, 60
LEFT_FREE = 96 * 1024


@contextlib.contextmanager
def small_disk(where: Path, size: str = "20m"):
    where.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill(disk: Path, leave: int = 0) -> Path:
    """Take every free byte of `disk` but `leave`; returns the ballast file to delete later."""
    ballast = disk / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while os.write(fd, b"\0" * chunk):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    finally:
        os.close(fd)
    return ballast


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_lines(logs: Path) -> list[str]:
    return (logs / "serve-1.log").read_text(errors="replace").splitlines()


@pytest.mark.slow
def test_a_full_disk_is_waited_out_and_every_acknowledged_message_answered(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    with small_disk(tmp_path / "disk") as disk:
        home = disk / "home"
        home.mkdir()
        for n in (1, 2):  # the harness logs to home/serve-N.log: keep those off the disk
            (home / f"serve-{n}.log").symlink_to(logs / f"serve-{n}.log")
        server = served(home)
        sent: list = []
        first = synthetic_deliveries(BEFORE, seed=chaos_seed(3), image_share=0.0)
        second = synthetic_deliveries(DURING, seed=chaos_seed(4), image_share=0.0, id_offset=BEFORE)
        try:
            server.start()
            warm = drive(server.url, SECRET, first, deadline=time.monotonic() + 120)
            assert settles(home)

            # Room for part of the second burst only: the rest is refused, and what was
            # accepted meets the full disk on its way to a reply (X retries each refusal).
            ballast = fill(disk, leave=LEFT_FREE)
            sender = threading.Thread(
                target=lambda: sent.append(
                    drive(
                        server.url, SECRET, second, concurrency=4, deadline=time.monotonic() + 180
                    )
                )
            )
            sender.start()
            pid = server.process.pid
            cpu_before, lines_before, started = cpu_seconds(pid), log_lines(logs), time.time()
            time.sleep(8)
            cpu_full = cpu_seconds(pid) - cpu_before
            logged = log_lines(logs)[len(lines_before) :]
            full_for = time.time() - started
            # While full, nothing is parked and no delivery's attempts run out.
            assert LocalBusStore(home / "bus.sqlite3").dead_letters() == []

            ballast.unlink()  # space comes back
            sender.join(timeout=200)
            assert settles(home)
        finally:
            server.stop()

        acked = set(warm.acknowledged) | set(sent[0].acknowledged)
        statuses = sent[0].statuses()
        report = checked_ledger(home, acked)
        torn = TornLines()
        LocalLake(home / "lake").records(torn)
        integrity = {
            name: sqlite3.connect(home / name).execute("PRAGMA integrity_check").fetchone()[0]
            for name in ("bus.sqlite3", "idempotency.sqlite3", "guards.sqlite3")
        }
    dispatcher = [line for line in logged if "dispatcher" in line]
    print(
        f"\ndisk full for {full_for:.1f} s: webhook answers {dict(statuses)}, "
        f"{len(logged)} log lines ({len(dispatcher)} from the dispatcher), "
        f"{cpu_full:.2f} s CPU\n" + "\n".join(dispatcher[:10]) + f"\n{ledger.format_report(report)}"
    )
    assert set(statuses) <= {200, 503}, statuses  # never 500, never a dropped connection
    assert statuses[503] > 0  # the disk really was full for the webhook
    assert len(dispatcher) < 5  # backing off, not a hot loop logging every retry
    assert cpu_full < 0.5 * full_for
    assert len(acked) == BEFORE + DURING
    assert report.violations == []
    assert report.settled and report.states == {"sent": BEFORE + DURING}
    assert len(torn) == 0
    assert set(integrity.values()) == {"ok"}
