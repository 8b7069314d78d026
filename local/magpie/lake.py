"""The local data lake, laid out as Firehose writes it on AWS.

`MAGPIE_HOME/lake/year=YYYY/month=MM/day=DD/magpie-YYYY-MM-DD-HH.json`, one EventBridge
envelope per line, partitioned by the event's time. Firehose delivers at least once, and so
does this writer: readers dedupe on the envelope id. X's raw items (TWITTER_* events) have
the same layout under `lake/x-raw/` (chalicelib/lake_routes.py says why): a `LocalLake`
reads only its own root's date folders, so the two never mix.

A record is written whole or not at all. A full disk can accept part of a write: the
writer then cuts the file back to where the record began and raises, so the delivery is
retried once there is space, and the next record never lands glued to a torn one. Files
written before that (or torn by a power cut) may still hold a torn line: every reader goes
through `read_lines`, which skips such a line and counts it, so a report can say so
instead of failing.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.errors import UnavailableError
from chalicelib.lake_routes import RAW_X_PREFIX

log = logging.getLogger(__name__)


class LakeWriteError(UnavailableError, OSError):
    """A record could not be written whole (a full disk): nothing of it was kept."""


@dataclass
class TornLines:
    """Lines a reader skipped because they are not whole JSON records: where they are."""

    places: list[tuple[Path, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.places)

    def describe(self, limit: int = 5) -> str:
        shown = ", ".join(f"{path.name}:{line}" for path, line in self.places[:limit])
        more = f" and {len(self.places) - limit} more" if len(self.places) > limit else ""
        return f"{len(self.places)} torn lake line(s) skipped ({shown}{more})"


def read_lines(path: Path, torn: TornLines | None = None) -> Iterator[dict[str, Any]]:
    """The records of one lake file, skipping (and counting in `torn`) lines that are not
    whole JSON objects: what a reader of the lake should use instead of `json.loads`."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:  # JSONDecodeError and bad UTF-8 alike
                record = None
            if isinstance(record, dict):
                yield record
                continue
            if torn is not None:
                torn.places.append((path, number))
            log.warning("skipping a torn line %d in %s", number, path)


class LocalLake:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, envelope: dict[str, Any]) -> Path:
        time = str(envelope.get("time", ""))
        year, month, day, hour = time[0:4], time[5:7], time[8:10], time[11:13]
        if not (year.isdigit() and month.isdigit() and day.isdigit() and hour.isdigit()):
            raise ValueError(f"event time {time!r} is not ISO-8601")
        folder = self.root / f"year={year}" / f"month={month}" / f"day={day}"
        return folder / f"magpie-{year}-{month}-{day}-{hour}.json"

    def write(self, envelope: dict[str, Any]) -> None:
        path = self.path_for(envelope)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(envelope, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            # Writers in other threads and processes wait: cutting back a torn record must
            # not cut someone else's record appended after it.
            fcntl.flock(fd, fcntl.LOCK_EX)
            _append_whole(fd, line)
        finally:
            os.close(fd)  # also releases the lock

    def records(self, torn: TornLines | None = None) -> list[dict[str, Any]]:
        """Every envelope in the lake, each id once; torn lines are skipped (and counted in
        `torn` when given)."""
        seen: set[str | None] = set()
        out = []
        for path in self.files():
            for record in read_lines(path, torn):
                if record.get("id") in seen:
                    continue
                seen.add(record.get("id"))
                out.append(record)
        return out

    def files(self) -> list[Path]:
        return sorted(self.root.glob("year=*/month=*/day=*/*.json"))


def raw_x_lake(lake_root: Path) -> LocalLake:
    """The lake of X's raw items, beside Magpie's events under `lake_root`."""
    return LocalLake(lake_root / RAW_X_PREFIX.rstrip("/"))


def _append_whole(fd: int, line: bytes) -> None:
    """Append `line` completely, or leave the file as it was and raise LakeWriteError."""
    start = os.fstat(fd).st_size
    if start and os.pread(fd, 1, start - 1) != b"\n":
        line = b"\n" + line  # a line torn earlier stays a line of its own, ours stays whole
    written = 0
    try:
        while written < len(line):
            count = os.write(fd, line[written:])
            if count == 0:  # no progress and no error: treat as out of space
                raise OSError(errno.ENOSPC, "no space left for the lake record")
            written += count
    except OSError as exc:
        os.ftruncate(fd, start)
        raise LakeWriteError(
            exc.errno or errno.EIO, f"lake record not written ({written} of {len(line)} bytes)"
        ) from exc
