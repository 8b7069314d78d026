"""The soak's memory reading: the whole process tree, whichever thread started a child."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from bench.hostile_images import rss_kb
from bench.soak import tree_rss_mb


def test_a_child_started_by_a_thread_that_lives_on_is_counted() -> None:
    # As the model worker is: started by a bus worker thread that keeps running.
    started, release = threading.Event(), threading.Event()
    child: list[subprocess.Popen] = []

    def start_and_stay() -> None:
        code = "import time, numpy; time.sleep(30)"  # numpy: tens of MB resident
        child.append(subprocess.Popen([sys.executable, "-c", code]))
        started.set()
        release.wait(60)

    thread = threading.Thread(target=start_and_stay)
    thread.start()
    try:
        started.wait(10)
        own = rss_kb(os.getpid()) / 1024
        for _ in range(50):  # until the child has imported numpy
            if rss_kb(child[0].pid) / 1024 > 15:
                break
            threading.Event().wait(0.1)
        assert tree_rss_mb(os.getpid()) - own > 15
    finally:
        child[0].kill()
        child[0].wait()
        release.set()
        thread.join()
