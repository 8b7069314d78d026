"""The model worker's lanes: two images in one worker process, and who is blamed when it dies.

Real models in a real worker process; the slow image is a 1600x1600 page, whose text
detection takes about a second here (seconds under load).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from PIL import Image, ImageDraw, ImageFont

from chalicelib.analysis.local_image import LocalImageAnalyser
from chalicelib.analysis.model_worker import ImageBudgetExceededError, ModelWorker
from tests.analysis.images import png_bytes
from tests.security.test_hostile_images import Blobs, banner

pytestmark = pytest.mark.slow


def page(text: str) -> bytes:
    """A 1600x1600 page with one big word: slow to read, and read."""
    image = Image.new("RGB", (1600, 1600), "white")
    ImageDraw.Draw(image).text((100, 700), text, fill="black", font=ImageFont.load_default(120))
    return png_bytes(image)


BLOBS = Blobs(
    {
        "media/page.png": page("PAGE"),
        "media/small.png": png_bytes(banner("SMALL", (480, 200))),
        "media/other.png": png_bytes(banner("OTHER", (480, 200))),
    }
)


@pytest.fixture
def worker() -> Iterator[ModelWorker]:
    running = ModelWorker()
    LocalImageAnalyser(BLOBS, None, models=running).text("media/small.png")  # up and warm
    yield running
    running.close()


def read(worker: ModelWorker, key: str, budget: float = 30.0) -> list[str]:
    analyser = LocalImageAnalyser(BLOBS, None, models=worker, budget=budget)
    return [line["DetectedText"] for line in analyser.text(key)]


def in_background(fn, *args) -> Future:
    pool = ThreadPoolExecutor(1)
    future = pool.submit(fn, *args)
    pool.shutdown(wait=False)
    return future


def test_a_small_image_is_not_queued_behind_a_slow_one(worker: ModelWorker) -> None:
    slow = in_background(read, worker, "media/page.png")
    time.sleep(0.2)  # the page is in the worker
    # Faces, not text: text detection is one image at a time (local_image.OCR_LOCK).
    faces = LocalImageAnalyser(BLOBS, None, models=worker).faces("media/small.png")
    assert faces == {"CelebrityFaces": [], "UnrecognizedFaces": []}
    assert not slow.done()  # answered beside the page, not after it
    assert slow.result(timeout=120) == ["PAGE"]
    assert worker.starts == 1


def test_an_image_over_its_budget_costs_only_itself(worker: ModelWorker) -> None:
    other = in_background(read, worker, "media/page.png")
    time.sleep(0.2)
    with pytest.raises(ImageBudgetExceededError, match="time budget"):
        read(worker, "media/page.png", budget=0.3)  # killed the worker, the other page with it
    # The other page was not at fault: it is asked again on a fresh worker.
    assert other.result(timeout=120) == ["PAGE"]
    assert worker.starts == 2


def test_a_worker_that_dies_with_two_images_blames_neither(worker: ModelWorker) -> None:
    victim = worker.pid
    assert victim is not None
    pages = [in_background(read, worker, "media/page.png") for _ in range(2)]
    time.sleep(0.3)
    os.kill(victim, signal.SIGKILL)  # no way to tell which image did it: ask each alone
    assert [page.result(timeout=240) for page in pages] == [["PAGE"], ["PAGE"]]
    assert worker.pid != victim


def test_a_worker_that_dies_with_one_image_blames_it(worker: ModelWorker) -> None:
    victim = worker.pid
    assert victim is not None
    threading.Timer(0.3, os.kill, (victim, signal.SIGKILL)).start()
    with pytest.raises(ImageBudgetExceededError, match="killed by SIGKILL"):
        read(worker, "media/page.png")
    assert read(worker, "media/other.png") == ["OTHER"]


def test_a_closed_worker_is_not_restarted_for_the_image_in_it(worker: ModelWorker) -> None:
    page = in_background(read, worker, "media/page.png")
    time.sleep(0.2)
    worker.close()
    with pytest.raises(Exception, match="closed"):
        page.result(timeout=60)
    assert worker.pid is None and worker.starts == 1


RETAINED_AFTER_FREEING = """
import sys
import numpy as np
from chalicelib.analysis.model_worker import MALLOC_ARENAS, MMAP_THRESHOLD_BYTES, tune_malloc

def rss_mib():
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024

if sys.argv[1] == "tuned":
    assert tune_malloc(MALLOC_ARENAS, MMAP_THRESHOLD_BYTES)
before = rss_mib()
for _ in range(3):  # an activation of 24 MiB, written and freed, image after image
    block = np.ones(24 * 2**20, np.uint8)
    del block
print(rss_mib() - before)
"""


@pytest.mark.parametrize(("mode", "low", "high"), [("untuned", 20, 100), ("tuned", -100, 4)])
def test_freed_activations_go_back_to_the_system_once_malloc_is_tuned(mode, low, high) -> None:
    # A child interpreter: the settings are process-wide. Untuned, glibc raises its mmap
    # threshold after the first free and keeps the next blocks in the heap.
    out = subprocess.run(
        [sys.executable, "-c", RETAINED_AFTER_FREEING, mode],
        capture_output=True,
        text=True,
        check=True,
    )
    assert low <= float(out.stdout) <= high, out.stdout
