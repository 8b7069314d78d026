"""Local image analysis with the real bundled models on real images."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from chalicelib.analysis import local_image
from chalicelib.analysis.gallery import FaceGallery
from chalicelib.analysis.image_decode import InvalidImageError, decode_image
from chalicelib.analysis.local_image import (
    LocalImageAnalyser,
    detect_faces,
    moderate,
    moderation_labels,
    read_text,
)

from .images import (
    TEXT_ORIGIN,
    astronaut,
    cat,
    disguised,
    grace_hopper,
    jpeg_bytes,
    offline,
    png_bytes,
    png_header_only,
    text_font,
    text_image,
)


@pytest.fixture(scope="module", autouse=True)
def _offline() -> Iterator[None]:
    # The models load (once) and run inside this module's tests: none may download.
    with offline():
        yield


TEXT = "MAGPIE 2026"


@pytest.fixture(scope="module")
def astronaut_png() -> bytes:
    return png_bytes(astronaut())


@pytest.fixture(scope="module")
def astronaut_face(astronaut_png: bytes) -> dict[str, Any]:
    faces = detect_faces(astronaut_png)
    assert len(faces) == 1
    return faces[0]


def assert_same_box(actual: dict[str, float], expected: dict[str, float]) -> None:
    for side in ("Left", "Top", "Width", "Height"):
        assert actual[side] == pytest.approx(expected[side], abs=0.03), side


# -- faces -----------------------------------------------------------------------------------


def test_astronaut_has_one_face_where_her_face_is(astronaut_face: dict[str, Any]) -> None:
    box = astronaut_face["BoundingBox"]
    # Her face spans roughly x 180-265, y 80-170 of the 512 x 512 photo.
    assert 0.33 < box["Left"] < 0.37 and 0.13 < box["Top"] < 0.18
    assert 0.14 < box["Width"] < 0.20 and 0.14 < box["Height"] < 0.20
    assert astronaut_face["Confidence"] > 95
    assert len(astronaut_face["Embedding"]) == 128


def test_exif_orientation_is_applied(astronaut_face: dict[str, Any]) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored_sideways = astronaut().transpose(Image.Transpose.ROTATE_90)
    faces = detect_faces(jpeg_bytes(stored_sideways, exif=exif.tobytes()))
    assert len(faces) == 1
    assert_same_box(faces[0]["BoundingBox"], astronaut_face["BoundingBox"])


def test_large_images_are_downscaled_with_the_same_box_ratios(
    astronaut_face: dict[str, Any],
) -> None:
    big = jpeg_bytes(astronaut().resize((2000, 2000), Image.Resampling.BICUBIC))
    assert decode_image(big).shape == (1600, 1600, 3)
    faces = detect_faces(big)
    assert len(faces) == 1
    assert_same_box(faces[0]["BoundingBox"], astronaut_face["BoundingBox"])


def test_cat_has_no_human_face() -> None:
    assert detect_faces(png_bytes(cat())) == []


# -- decoding guards -------------------------------------------------------------------------


def test_image_over_the_pixel_limit_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidImageError, match="exceeds the limit"):
        decode_image(png_header_only(8000, 8000))


def test_decompression_bomb_is_refused() -> None:
    with pytest.raises(InvalidImageError, match="decompression bomb"):
        decode_image(png_header_only(20000, 20000))


def test_bytes_that_are_no_image_are_refused() -> None:
    with pytest.raises(InvalidImageError, match="not a readable image"):
        decode_image(b"<html>not an image</html>")


def test_truncated_image_is_refused(astronaut_png: bytes) -> None:
    with pytest.raises(InvalidImageError, match="corrupt or truncated"):
        decode_image(astronaut_png[: len(astronaut_png) // 2])


# -- text ------------------------------------------------------------------------------------


def test_drawn_text_is_read_back_with_its_box() -> None:
    image = text_image(TEXT)
    lines = read_text(png_bytes(image))
    assert [line["DetectedText"] for line in lines] == [TEXT]
    line = lines[0]
    assert line["Type"] == "LINE" and 90 < line["Confidence"] <= 100
    left, top, right, bottom = ImageDraw.Draw(image).textbbox(TEXT_ORIGIN, TEXT, font=text_font())
    box = line["Geometry"]["BoundingBox"]
    assert box["Left"] <= left / image.width and box["Top"] <= top / image.height
    assert box["Left"] + box["Width"] >= right / image.width
    assert box["Top"] + box["Height"] >= bottom / image.height
    assert box["Width"] < 0.7 and box["Height"] < 0.7  # around the text, not the image
    assert len(line["Geometry"]["Polygon"]) == 4


def test_text_on_a_transparent_background_is_read() -> None:
    # Without flattening onto white, the transparent pixels are black, like the text.
    image = png_bytes(text_image(TEXT, mode="RGBA"))
    assert [line["DetectedText"] for line in read_text(image)] == [TEXT]


# -- moderation ------------------------------------------------------------------------------


def test_onnx_models_run_on_threads_that_do_not_spin(astronaut_png: bytes) -> None:
    """Two images share the worker's cores: a thread team that spins while it waits holds
    cores the other image needs."""
    assert read_text(png_bytes(text_image(TEXT)))
    moderate(astronaut_png)
    ocr = local_image._ocr_engine()
    sessions = {
        "text detection": ocr.text_det.session.session,
        "text direction": ocr.text_cls.session.session,
        "text recognition": ocr.text_rec.session.session,
        "nudity": local_image._nude_detector().onnx_session,
    }
    settings = {
        name: (
            options.intra_op_num_threads,
            options.inter_op_num_threads,
            options.get_session_config_entry("session.intra_op.allow_spinning"),
        )
        for name, options in ((n, s.get_session_options()) for n, s in sessions.items())
    }
    assert settings == dict.fromkeys(sessions, (local_image.MODEL_THREADS, 1, "0"))


def test_text_detection_runs_one_image_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its activations are the worker's largest allocation: two at once would double them."""
    engine = local_image._ocr_engine()
    inside, most = 0, 0
    guard = threading.Lock()

    def counting(image: Any) -> Any:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0.05)
        with guard:
            inside -= 1
        return engine(image)

    monkeypatch.setattr(local_image, "_ocr_engine", lambda: counting)
    image = text_image(TEXT)
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _: local_image._text_in(np.asarray(image)), range(4)))
    assert [[line["DetectedText"] for line in lines] for lines in found] == [[TEXT]] * 4
    assert most == 1


def test_astronaut_is_not_moderated_though_the_detector_sees_her(astronaut_png: bytes) -> None:
    seen = local_image._body_parts(decode_image(astronaut_png))
    assert "FACE_FEMALE" in {part["class"] for part in seen}
    assert moderate(astronaut_png) == []


def test_moderation_labels_follow_rekognitions_taxonomy() -> None:
    detections = [
        {"class": "FEMALE_BREAST_EXPOSED", "score": 0.81},
        {"class": "BUTTOCKS_EXPOSED", "score": 0.64},
        {"class": "MALE_GENITALIA_EXPOSED", "score": 0.41},  # under 50: dropped
        {"class": "FEMALE_BREAST_COVERED", "score": 0.7},
        {"class": "FACE_FEMALE", "score": 0.95},  # no moderation label
    ]
    assert moderation_labels(detections) == [
        {"Name": "Explicit", "Confidence": 81.0, "ParentName": "", "TaxonomyLevel": 1},
        {
            "Name": "Swimwear or Underwear",
            "Confidence": 70.0,
            "ParentName": "",
            "TaxonomyLevel": 1,
        },
        {
            "Name": "Explicit Nudity",
            "Confidence": 81.0,
            "ParentName": "Explicit",
            "TaxonomyLevel": 2,
        },
        {
            "Name": "Female Swimwear or Underwear",
            "Confidence": 70.0,
            "ParentName": "Swimwear or Underwear",
            "TaxonomyLevel": 2,
        },
        {
            "Name": "Exposed Buttocks or Anus",
            "Confidence": 64.0,
            "ParentName": "Explicit Nudity",
            "TaxonomyLevel": 3,
        },
        {
            "Name": "Exposed Female Nipple",
            "Confidence": 81.0,
            "ParentName": "Explicit Nudity",
            "TaxonomyLevel": 3,
        },
    ]


# -- the ImageAnalyser port ------------------------------------------------------------------


class Blobs:
    """A blob store reader that counts reads."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs
        self.reads: list[str] = []

    def __call__(self, key: str) -> bytes:
        self.reads.append(key)
        return self.blobs[key]


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory, astronaut_png: bytes) -> FaceGallery:
    gallery = FaceGallery(tmp_path_factory.mktemp("gallery"))
    gallery.add("Eileen Collins", [astronaut_png])
    return gallery


@pytest.fixture(scope="module")
def blobs(astronaut_png: bytes) -> Blobs:
    return Blobs(
        {
            "media/astronaut.png": png_bytes(disguised(astronaut())),
            "media/grace.jpg": jpeg_bytes(grace_hopper()),
            "media/text.png": png_bytes(text_image(TEXT)),
        }
    )


@pytest.fixture(scope="module")
def analyser(gallery: FaceGallery, blobs: Blobs) -> LocalImageAnalyser:
    # Shared, so each image is analysed once for all the tests below.
    return LocalImageAnalyser(blobs, gallery)


def test_enrolled_face_is_a_celebrity_and_a_stranger_is_not(
    analyser: LocalImageAnalyser, gallery: FaceGallery
) -> None:
    known = analyser.faces("media/astronaut.png")
    assert known["UnrecognizedFaces"] == []
    [celebrity] = known["CelebrityFaces"]
    assert celebrity["Name"] == "Eileen Collins"
    assert celebrity["Id"] == gallery.id_of("Eileen Collins")
    assert 90 < celebrity["MatchConfidence"] <= 100
    assert set(celebrity["Face"]) == {"BoundingBox", "Confidence"}

    stranger = analyser.faces("media/grace.jpg")
    assert stranger["CelebrityFaces"] == []
    [face] = stranger["UnrecognizedFaces"]
    assert set(face) == {"BoundingBox", "Confidence"}


def test_without_a_gallery_every_face_is_unrecognised(blobs: Blobs) -> None:
    faces = LocalImageAnalyser(blobs, None).faces("media/astronaut.png")
    assert faces["CelebrityFaces"] == [] and len(faces["UnrecognizedFaces"]) == 1


def test_labels_are_only_what_the_detectors_saw(analyser: LocalImageAnalyser) -> None:
    [person] = analyser.labels("media/astronaut.png")
    assert person["Name"] == "Person" and person["Source"] == "local:dlib-hog"
    assert person["Confidence"] > 90 and len(person["Instances"]) == 1
    [text] = analyser.labels("media/text.png")
    assert text["Name"] == "Text" and text["Source"] == "local:rapidocr"
    assert text["Confidence"] > 90


def test_each_image_is_read_and_decoded_once(gallery: FaceGallery, blobs: Blobs) -> None:
    now = [1000.0]
    analyser = LocalImageAnalyser(blobs, gallery, clock=lambda: now[0])
    blobs.reads.clear()
    labels = analyser.labels("media/astronaut.png")
    faces = analyser.faces("media/astronaut.png")
    assert analyser.text("media/astronaut.png") == []
    assert analyser.moderation("media/astronaut.png") == []
    assert blobs.reads == ["media/astronaut.png"]
    assert labels[0]["Instances"][0] == faces["CelebrityFaces"][0]["Face"]

    now[0] += LocalImageAnalyser.CACHE_SECONDS + 1
    analyser.faces("media/astronaut.png")
    assert blobs.reads == ["media/astronaut.png"] * 2  # expired, read again


class CountingModels:
    """A ModelRunner that answers every model with nothing found and counts what it ran."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, bytes]] = []

    def run(self, name: str, image: bytes, timeout: float) -> tuple[Any, float]:
        self.ran.append((name, image))
        return [], 0.0


def test_a_dozen_images_in_flight_are_each_analysed_once() -> None:
    # The local runtime has up to 12 images in flight, each asked capability by capability.
    images = {f"media/{n}.png": f"image {n}".encode() for n in range(12)}
    models = CountingModels()
    analyser = LocalImageAnalyser(images.__getitem__, None, models=models)
    for ask in ("faces", "labels", "text", "moderation"):
        for key in images:
            getattr(analyser, ask)(key)
    assert sorted(models.ran) == sorted(
        (name, image) for image in images.values() for name in ("faces", "text", "body_parts")
    )


def test_the_kept_images_are_bounded_by_their_bytes() -> None:
    images = {key: key.encode() * 10 for key in ("media/a", "media/b", "media/c")}  # 70 bytes
    models = CountingModels()
    analyser = LocalImageAnalyser(images.__getitem__, None, models=models)
    analyser.CACHE_BYTES = 150  # two of them
    for key in images:
        analyser.faces(key)
    analyser.faces("media/a")  # the oldest went first: analysed again
    analyser.faces("media/c")  # kept
    ran = [image[:7] for _, image in models.ran]
    assert ran == [b"media/a", b"media/b", b"media/c", b"media/a"]


def test_text_through_the_port(analyser: LocalImageAnalyser) -> None:
    lines = analyser.text("media/text.png")
    assert [line["DetectedText"] for line in lines] == [TEXT]
    lines[0]["Geometry"]["BoundingBox"]["Left"] = -1.0
    assert analyser.text("media/text.png")[0]["Geometry"]["BoundingBox"]["Left"] >= 0


def test_every_port_answer_is_plain_json(analyser: LocalImageAnalyser) -> None:
    # Detectors return numpy scalars; the answers go into events, which must be JSON.
    import json

    for key in ("media/text.png", "media/astronaut.png"):
        answers = [
            analyser.labels(key),
            analyser.text(key),
            analyser.faces(key),
            analyser.moderation(key),
        ]
        assert json.loads(json.dumps(answers)) == answers


def test_importing_loads_no_model_library() -> None:
    # The analysis modules are imported by every backend; the models load on first use.
    code = (
        "import sys, chalicelib.analysis.local_image, chalicelib.analysis.gallery\n"
        "heavy = {'numpy', 'PIL', 'dlib', 'rapidocr', 'nudenet', 'onnxruntime', 'cv2'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert result.stdout.strip() == "[]"
