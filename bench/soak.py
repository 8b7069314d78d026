"""A soak: `magpie serve` fed at a steady rate for minutes, its memory sampled all along.

`python -m bench.soak [--minutes 15] [--rate 5]` writes bench/results/soak.json.

The server runs as `magpie serve` does, in its own process (with the model worker processes
it starts), on a fresh home; this process sends signed synthetic deliveries (text, a few
with photos from the media mirror) at `--rate` a second, retrying refusals as X does, and
every `--every` seconds samples the resident memory of the server and of its children
(/proc/PID/status VmRSS, summed over the process tree) and the bus backlog. Flat is the
goal: a peak that keeps climbing is a leak, a backlog that keeps climbing is a rate the
machine cannot sustain.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.environment import SCRATCH_DIR, machine, write_result
from bench.hostile_images import children

SECRET = "bench-soak-secret"  # noqa: S105 (made up)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of `pid` and every descendant, in MB. A child is listed under the
    thread that started it (/proc/PID/task/TID/children): the model worker is started by a
    bus worker thread, so every thread's list is read, not only the main thread's."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:  # it ended between the listing and the read
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        pending += children(current)
    return total / 1024


def soak(minutes: float, rate: float, every: float, image_share: float) -> dict[str, Any]:
    from magpie.loadtest import (
        ServeProcess,
        drive,
        free_port,
        serve_environment,
        synthetic_deliveries,
    )

    from chalicelib.bus.local import LocalBusStore

    SCRATCH_DIR.mkdir(parents=True, exist_ok=True)
    count = int(minutes * 60 * rate)
    with tempfile.TemporaryDirectory(prefix="bench-soak-", dir=SCRATCH_DIR) as tmp:
        home = Path(tmp) / "home"
        server = ServeProcess(home, free_port(), serve_environment(home, SECRET))
        deliveries = synthetic_deliveries(min(count, 5000), seed=15, image_share=image_share)
        while len(deliveries) < count:  # more than loadtest makes at once: new ids
            offset = len(deliveries)
            deliveries += synthetic_deliveries(
                min(count - offset, 5000),
                seed=15 + offset,
                image_share=image_share,
                id_offset=offset,
            )
        samples: list[dict[str, float]] = []
        stop = threading.Event()
        started = time.monotonic()

        def sample() -> None:
            store = LocalBusStore(home / "bus.sqlite3")
            while not stop.wait(every):
                samples.append(
                    {
                        "second": round(time.monotonic() - started, 1),
                        "rss_mb": round(tree_rss_mb(server.process.pid), 1),
                        "backlog": store.outstanding(),
                    }
                )

        with server:
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            sent = 0
            for index in range(0, count, max(1, int(rate))):
                due = started + index / rate
                time.sleep(max(0.0, due - time.monotonic()))
                batch = deliveries[index : index + max(1, int(rate))]
                result = drive(
                    server.url, SECRET, batch, concurrency=4, deadline=time.monotonic() + 60
                )
                sent += len(result.acknowledged)
            drained = _wait_idle(home, timeout=600)
            stop.set()
            sampler.join(timeout=every + 5)
    rss = [s["rss_mb"] for s in samples]
    first_minute = [s["rss_mb"] for s in samples if s["second"] <= 60] or rss[:1]
    return {
        "minutes": minutes,
        "rate_per_second": rate,
        "image_share": image_share,
        "acknowledged": sent,
        "drained": drained,
        "rss_mb_first_minute_peak": max(first_minute) if first_minute else None,
        "rss_mb_peak": max(rss) if rss else None,
        "rss_mb_last": rss[-1] if rss else None,
        "backlog_peak": max((s["backlog"] for s in samples), default=None),
        "samples": samples,
    }


def _wait_idle(home: Path, timeout: float) -> bool:
    from magpie import ledger

    return ledger.wait_until_idle(home, timeout=timeout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=5.0, help="deliveries a second")
    parser.add_argument("--every", type=float, default=15.0, help="seconds between samples")
    parser.add_argument("--image-share", type=float, default=0.05)
    args = parser.parse_args(argv)
    before = machine()
    result = soak(args.minutes, args.rate, args.every, args.image_share)
    result["machine"], result["machine_after"] = before, machine()
    path = write_result("soak", result)
    print(
        f"soak: {result['acknowledged']} acknowledged in {args.minutes} min at {args.rate}/s; "
        f"RSS peak {result['rss_mb_peak']} MB (first minute {result['rss_mb_first_minute_peak']}, "
        f"last {result['rss_mb_last']}); backlog peak {result['backlog_peak']}; wrote {path}"
    )


if __name__ == "__main__":
    main()
