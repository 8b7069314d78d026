"""The local data lake, laid out as Firehose writes it on AWS.

`MAGPIE_HOME/lake/year=YYYY/month=MM/day=DD/magpie-YYYY-MM-DD-HH.json`, one EventBridge
envelope per line, partitioned by the event's time. Firehose delivers at least once, and so
does this writer: readers dedupe on the envelope id.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


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
        # One O_APPEND write per record: concurrent writers never interleave within a line.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def files(self) -> list[Path]:
        return sorted(self.root.glob("year=*/month=*/day=*/*.json"))

    def records(self) -> list[dict[str, Any]]:
        """Every envelope in the lake, each id once."""
        seen: set[str] = set()
        out = []
        for path in self.files():
            for line in path.read_text().splitlines():
                if not line.strip():
                    continue
                record = json.loads(line)
                if record.get("id") in seen:
                    continue
                seen.add(record.get("id"))
                out.append(record)
        return out
