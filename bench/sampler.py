"""A small sampling profiler over every thread (cProfile sees only the thread it runs in, and
the local pipeline runs on the dispatcher's worker threads and the HTTP server's).

Every `interval` seconds it reads `sys._current_frames()` and counts, for each busy thread,
the function at the top of the stack (self time) and every distinct function on the stack
(inclusive time). Idle threads (waiting in a lock, a queue, select or sleep) are not counted.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

IDLE_LEAVES = {
    "wait",
    "select",
    "poll",
    "accept",
    "_wait_for_tstate_lock",
    "sleep",
    "get",
    "serve_forever",
    "readinto",
    "_worker",
    "recv_into",
    "acquire",
}


@functools.cache  # per code object: parsing paths on every sample cost a quarter of the
# GIL time of the process it measures, time the code under test did not get
def _label(code: Any) -> str:
    path = Path(code.co_filename)
    parts = path.parts
    for anchor in ("site-packages", "lib"):
        if anchor in parts:
            index = len(parts) - 1 - parts[::-1].index(anchor)
            return f"{'/'.join(parts[index + 1 :])}:{code.co_name}"
    try:
        return f"{path.relative_to(Path.cwd())}:{code.co_name}"
    except ValueError:
        return f"{path.name}:{code.co_name}"


class Sampler:
    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.self_counts: Counter[str] = Counter()
        self.inclusive: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            for ident, frame in sys._current_frames().items():
                if ident == me or frame.f_code.co_name in IDLE_LEAVES:
                    continue
                self.samples += 1
                self.self_counts[_label(frame.f_code)] += 1
                seen = set()
                while frame is not None:
                    label = _label(frame.f_code)
                    if label not in seen:
                        seen.add(label)
                        self.inclusive[label] += 1
                    frame = frame.f_back

    def report(self, top: int = 25) -> dict[str, Any]:
        total = max(1, self.samples)

        def share(counter: Counter[str]) -> list[dict[str, Any]]:
            return [
                {"function": k, "share": round(v / total, 4)} for k, v in counter.most_common(top)
            ]

        return {
            "busy_samples": self.samples,
            "interval_ms": self.interval * 1000,
            "self": share(self.self_counts),
            "inclusive": share(self.inclusive),
        }


def measure(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any], float]:
    started = time.perf_counter()
    with Sampler() as sampler:
        result = fn(*args, **kwargs)
    return result, sampler.report(), time.perf_counter() - started
