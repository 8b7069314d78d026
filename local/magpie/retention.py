"""What a local bot keeps, and for how long: pruning on a schedule.

Every MAGPIE_PRUNE_INTERVAL_MINUTES (60; 0 never) the runtime deletes:

- finished bus deliveries, and the events no unfinished or parked delivery still needs
  (the local archive `magpie replay --from/--to` reads), after MAGPIE_BUS_RETENTION_DAYS (7);
- downloaded and annotated media (`MAGPIE_HOME/media`), after the same;
- idempotency records past their TTL (a week; a reply's, REPLY_MEMORY_DAYS);
- loop-guard counters, thread depths and post intents past their expiry;
- data-lake files (Magpie's events and X's raw items alike) last written more than
  MAGPIE_LAKE_RETENTION_DAYS ago (90; 0 keeps them);
- dry-run replies and their images after MAGPIE_OUTBOX_RETENTION_DAYS (7; 0 keeps them),
  and temporary files a crash left behind after an hour.

Dead letters and pending deliveries are never pruned. SQLite reuses the pages it frees, so
its files stay at their high-water mark rather than shrink (docs/RELIABILITY.md gives the
disk a bot needs).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from magpie.lake import LocalLake, raw_x_lake

logger = logging.getLogger(__name__)

DAY = 24 * 3600
STALE_TEMPORARY_S = 3600  # a temporary file this old belongs to no write in progress


@dataclass(frozen=True)
class RetentionPolicy:
    bus_days: int = 7
    lake_days: int = 90  # 0: kept for ever
    outbox_days: int = 7  # 0: kept for ever

    @classmethod
    def from_settings(cls) -> RetentionPolicy:
        from chalicelib.config import settings

        config = settings()
        return cls(
            bus_days=config.bus_retention_days,
            lake_days=config.lake_retention_days,
            outbox_days=config.outbox_retention_days,
        )


@dataclass
class Pruned:
    """How much one pass deleted, per kind of state."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, count: int) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + count

    def __str__(self) -> str:
        return ", ".join(f"{n} {kind}" for kind, n in self.counts.items() if n) or "nothing"


def prune(home: Path, policy: RetentionPolicy, now: float | None = None) -> Pruned:
    """One pass over everything under `home`."""
    from chalicelib.bus.local import LocalBusStore
    from chalicelib.egress.guards import SqliteGuardStore
    from chalicelib.idempotency import prune_expired

    now = time.time() if now is None else now
    pruned = Pruned()
    bus_cutoff = now - policy.bus_days * DAY
    if (home / "bus.sqlite3").exists():
        deliveries, events = LocalBusStore(home / "bus.sqlite3").prune(
            finished_before=bus_cutoff, events_before=_iso(bus_cutoff)
        )
        pruned.add("finished deliveries", deliveries)
        pruned.add("events", events)
    if (home / "idempotency.sqlite3").exists():
        pruned.add("idempotency records", prune_expired(home / "idempotency.sqlite3", now))
    if (home / "guards.sqlite3").exists():
        pruned.add(
            "guard records", SqliteGuardStore(home / "guards.sqlite3", clock=lambda: now).prune()
        )
    pruned.add("media files", _remove_older(_files(home / "media"), bus_cutoff))
    if policy.lake_days:
        cutoff = now - policy.lake_days * DAY
        for lake in (LocalLake(home / "lake"), raw_x_lake(home / "lake")):
            pruned.add("lake files", _prune_lake(lake.root, cutoff))
    outbox = home / "outbox"
    if policy.outbox_days:
        replies = [*outbox.glob("*.json"), *_files(outbox / "media")]
        pruned.add("outbox files", _remove_older(replies, now - policy.outbox_days * DAY))
    leftovers = [*outbox.glob(".*.tmp"), *(home / "media").rglob("*.tmp")]
    pruned.add("temporary files", _remove_older(leftovers, now - STALE_TEMPORARY_S))
    return pruned


class Pruner:
    """Runs `prune` at start and then every `interval_s`, on a thread of its own."""

    def __init__(self, home: Path, policy: RetentionPolicy, interval_s: float) -> None:
        self.home = home
        self.policy = policy
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval_s <= 0:
            return
        self._thread = threading.Thread(target=self._loop, name="magpie-pruner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                pruned = prune(self.home, self.policy)
            except Exception:  # a full disk or a locked file: the next pass tries again
                logger.exception(
                    "pruning %s failed; trying again in %.0f s", self.home, self.interval_s
                )
            else:
                logger.info("pruned %s", pruned)
            self._stop.wait(self.interval_s)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.is_dir() else []


def _remove_older(paths: Iterable[Path], cutoff: float) -> int:
    removed = 0
    for path in paths:
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another pass or a reader's cleanup got there first
            continue
    return removed


def _prune_lake(root: Path, cutoff: float) -> int:
    """Delete lake files last written before `cutoff`, then the folders left empty. By when
    they were written, not by the events' dates: replayed or imported old events stay for
    the whole window too."""
    removed = _remove_older(sorted(root.glob("year=*/month=*/day=*/*.json")), cutoff)
    for depth in ("year=*/month=*/day=*", "year=*/month=*", "year=*"):
        for folder in root.glob(depth):
            _remove_if_empty(folder)
    return removed


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
