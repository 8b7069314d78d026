"""Hostile images: thin, long, huge, animated and decompression bombs, each within one
image's budget, through the real local models and the real model worker process.

Every image here is generated for real (Pillow, or PNG chunks written by hand where Pillow
would refuse to write such a file), and none is faked at the model level.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from bench.hostile_images import png_of_shape
from chalicelib.analysis.image_decode import InvalidImageError, decode_image
from chalicelib.analysis.local_image import LocalImageAnalyser, padded_for_ocr
from chalicelib.analysis.media import MediaRejected, validate_image
from chalicelib.analysis.model_worker import (
    MEMORY_LIMIT_BYTES,
    ImageBudgetExceededError,
    ModelWorker,
)
from tests.analysis.images import png_bytes, png_header_only, text_font


def banner(text: str, size: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((20, (size[1] - 48) // 2), text, fill="black", font=text_font())
    return image


def animated(fmt: str, texts: list[str]) -> bytes:
    frames = [banner(text, (480, 200)) for text in texts]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


class Blobs(dict):
    def __call__(self, key: str) -> bytes:
        return self[key]


@pytest.fixture(scope="module")
def worker() -> Iterator[ModelWorker]:
    running = ModelWorker()
    yield running
    running.close()


def analyse_all(analyser: LocalImageAnalyser, key: str) -> tuple[dict, list[str]]:
    """What steps.analyse_image asks, in its order; failures as the step records them."""
    results, errors = {}, []
    for name in ("faces", "labels", "text", "moderation"):
        try:
            results[name] = getattr(analyser, name)(key)
        except Exception as exc:
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    return results, errors


# --- refused from the header, before a pixel is decoded ------------------------------------

THIN = (3000, 4)
LONG = (1, 39_000_000)
HUGE_SIDE = (20_000, 1_000)


@pytest.mark.parametrize("size", [THIN, LONG, HUGE_SIDE, (4, 3000)])
def test_download_refuses_thin_long_and_huge_images_by_shape(size):
    data = png_of_shape(*size)
    assert len(data) < 5 * 1024 * 1024  # all small enough to pass the download cap
    with pytest.raises(MediaRejected) as refused:
        validate_image(data)
    assert refused.value.reason == "bad_shape"


@pytest.mark.parametrize("size", [THIN, LONG, HUGE_SIDE])
def test_analysis_refuses_them_too_without_decoding(size):
    # The analysis reads from the blob store, not only from what download checked.
    with pytest.raises(InvalidImageError, match="shape"):
        decode_image(png_of_shape(*size))


def test_a_decompression_bomb_is_refused_at_both_layers():
    bomb = png_header_only(30_000, 30_000)
    with pytest.raises(MediaRejected) as refused:
        validate_image(bomb)
    assert refused.value.reason == "decompression_bomb"
    with pytest.raises(InvalidImageError, match="decompression bomb"):
        decode_image(bomb)


def test_only_the_four_photo_formats_reach_a_decoder():
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buffer, "TIFF")
    with pytest.raises(InvalidImageError, match="not a readable image"):
        decode_image(buffer.getvalue())


# --- shapes that are allowed stay bounded ---------------------------------------------------


@pytest.mark.parametrize("shape", [(1600, 2), (2, 1600), (1600, 400), (100, 100)])
def test_text_recognition_sees_at_most_a_4_to_1_canvas(shape):
    import numpy as np

    width, height = shape
    image = np.zeros((height, width, 3), dtype=np.uint8)
    padded = padded_for_ocr(image)
    canvas_h, canvas_w = padded.shape[:2]
    assert canvas_w >= width and canvas_h >= height
    assert max(canvas_w, canvas_h) <= 4 * min(canvas_w, canvas_h)
    assert (padded[:height, :width] == image).all()  # the image at the top left, unmoved


@pytest.mark.slow
def test_a_20_to_1_banner_is_read_within_the_workers_budget(worker):
    # The thinnest shape download accepts; it once grew to a 1.6 GB canvas in rapidocr.
    blobs = Blobs({"media/banner.png": png_bytes(banner("MAGPIE", (2000, 100)))})
    analyser = LocalImageAnalyser(blobs, None, models=worker)
    results, errors = analyse_all(analyser, "media/banner.png")
    assert errors == []
    assert [line["DetectedText"] for line in results["text"]] == ["MAGPIE"]
    [line] = results["text"]
    box = line["Geometry"]["BoundingBox"]
    assert box["Left"] < 0.1 and 0.1 < box["Top"] + box["Height"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_an_animation_is_analysed_by_its_first_frame_only(worker, fmt):
    data = animated(fmt, ["FIRST", "SECOND", "THIRD"])
    with Image.open(io.BytesIO(data)) as image:
        assert getattr(image, "n_frames", 1) == 3  # really animated
    analyser = LocalImageAnalyser(Blobs({"media/anim": data}), None, models=worker)
    assert [line["DetectedText"] for line in analyser.text("media/anim")] == ["FIRST"]


# --- each hostile image costs one image's budget, recorded, and the next one is analysed ---


@pytest.mark.slow
def test_a_thin_image_is_recorded_in_analysis_errors_by_the_step(local_env):
    from chalicelib import backend
    from chalicelib.analysis.steps import analyse_image

    backend.blob_store().put("media/thin.png", png_of_shape(*THIN), "image/png")
    result = analyse_image({"Key": "media/thin.png", "Url": "https://pbs.twimg.com/t.png"})
    capabilities = {error["Capability"] for error in result["Errors"]}
    assert capabilities == {"faces", "labels", "text", "moderation"}
    assert all("3000x4" in error["Error"] for error in result["Errors"])
    assert all(error["Image"] == "media/thin.png" for error in result["Errors"])


@pytest.mark.slow
def test_the_worker_runs_under_its_memory_limit(worker):
    LocalImageAnalyser(Blobs({"k": png_bytes(banner("A", (200, 200)))}), None, models=worker).text(
        "k"
    )
    limits = Path(f"/proc/{worker.pid}/limits").read_text()
    [line] = [line for line in limits.splitlines() if line.startswith("Max address space")]
    assert line.split()[3:5] == [str(MEMORY_LIMIT_BYTES)] * 2
    assert worker.pid != os.getpid()


@pytest.mark.slow
def test_an_image_over_its_time_budget_is_an_error_and_the_worker_is_replaced(worker):
    slow = png_bytes(banner("SLOW", (1600, 1600)))  # OCR takes seconds on 1600x1600
    blobs = Blobs({"media/slow.png": slow, "media/next.png": png_bytes(banner("NEXT", (480, 200)))})
    LocalImageAnalyser(blobs, None, models=worker).text("media/next.png")  # warm: started
    # Less than faces needs on 1600x1600 (0.2-0.3 s), so the budget runs out in the first model.
    analyser = LocalImageAnalyser(blobs, None, models=worker, budget=0.05)
    starts = worker.starts
    _, errors = analyse_all(analyser, "media/slow.png")
    assert "ImageBudgetExceededError" in errors[0] and "faces exceeded" in errors[0], errors
    # The budget is the image's: once spent, its other capabilities do not run at all.
    assert len(errors) == 4 and all("ImageBudgetExceededError" in e for e in errors), errors
    assert worker.pid is None  # killed; started again on demand
    fresh = LocalImageAnalyser(blobs, None, models=worker)
    assert [line["DetectedText"] for line in fresh.text("media/next.png")] == ["NEXT"]
    assert worker.starts == starts + 1


@pytest.mark.slow
def test_a_worker_killed_mid_image_is_that_images_error_and_is_restarted(worker):
    blobs = Blobs(
        {
            "media/victim.png": png_bytes(banner("VICTIM", (1600, 1600))),
            "media/after.png": png_bytes(banner("AFTER", (480, 200))),
        }
    )
    analyser = LocalImageAnalyser(blobs, None, models=worker)
    analyser.text("media/after.png")  # the worker is up and warm
    victim_pid = worker.pid

    def kill_soon() -> None:
        time.sleep(0.3)
        os.kill(victim_pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    with pytest.raises(ImageBudgetExceededError, match="killed by SIGKILL"):
        analyser.text("media/victim.png")
    killer.join()
    assert [line["DetectedText"] for line in analyser.text("media/after.png")] == ["AFTER"]
    fresh = LocalImageAnalyser(blobs, None, models=worker)
    assert [line["DetectedText"] for line in fresh.text("media/after.png")] == ["AFTER"]
    assert worker.pid != victim_pid


@pytest.mark.slow
def test_a_model_out_of_memory_is_that_images_error_and_the_worker_is_replaced():
    # A worker capped at 1 GiB loads its models (about 0.8 GiB of address space with its
    # two malloc arenas) but cannot read a 1600x1600 page (1.25 GiB at its peak): what any
    # runaway allocation meets under the real 3 GiB cap.
    small = ModelWorker(memory_limit=2**30)
    try:
        blobs = Blobs({"media/page.png": png_bytes(banner("PAGE", (1600, 1600)))})
        analyser = LocalImageAnalyser(blobs, None, models=small)
        with pytest.raises(ImageBudgetExceededError, match="memory budget"):
            analyser.text("media/page.png")
        assert small.pid is None and small.starts == 1  # replaced on the next call
        assert analyser.faces("media/page.png")["UnrecognizedFaces"] == []  # dlib fits
        assert small.starts == 2
    finally:
        small.close()
