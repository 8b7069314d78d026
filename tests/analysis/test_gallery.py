"""The known-faces gallery, enrolled and matched with the real dlib models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from chalicelib.analysis.gallery import FaceGallery, match_confidence
from chalicelib.analysis.local_image import detect_faces

from .images import astronaut, cat, disguised, grace_hopper, offline, png_bytes

COLLINS = "Eileen Collins"
HOPPER = "Grace Hopper"


@pytest.fixture(scope="module", autouse=True)
def _offline() -> Iterator[None]:
    # The models load (once) and run inside this module's tests: none may download.
    with offline():
        yield


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return {
        "collins": png_bytes(astronaut()),
        "collins_disguised": png_bytes(disguised(astronaut())),
        "hopper": png_bytes(grace_hopper()),
        "hopper_disguised": png_bytes(disguised(grace_hopper())),
    }


@pytest.fixture(scope="module")
def embeddings(photos: dict[str, bytes]) -> dict[str, list[float]]:
    found = {name: detect_faces(photo) for name, photo in photos.items()}
    assert {name: len(faces) for name, faces in found.items()} == dict.fromkeys(found, 1)
    return {name: faces[0]["Embedding"] for name, faces in found.items()}


@pytest.fixture(scope="module")
def collins_only(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, bytes]) -> FaceGallery:
    gallery = FaceGallery(tmp_path_factory.mktemp("collins"))
    assert gallery.add(COLLINS, [photos["collins"]]) == 1
    return gallery


def test_enrolled_person_is_recognised_in_a_different_looking_photo(
    collins_only: FaceGallery, embeddings: dict[str, list[float]]
) -> None:
    match = collins_only.match(embeddings["collins_disguised"])
    assert match is not None
    name, confidence = match
    assert name == COLLINS and 90 < confidence <= 100


def test_a_different_person_is_not_recognised(
    collins_only: FaceGallery, embeddings: dict[str, list[float]]
) -> None:
    assert collins_only.match(embeddings["hopper"]) is None
    assert collins_only.match(embeddings["hopper_disguised"]) is None


def test_the_nearest_enrolled_person_wins(
    tmp_path: Path, photos: dict[str, bytes], embeddings: dict[str, list[float]]
) -> None:
    gallery = FaceGallery(tmp_path)
    gallery.add(COLLINS, [photos["collins"]])
    gallery.add(HOPPER, [photos["hopper"]])
    assert gallery.names() == [COLLINS, HOPPER]
    assert gallery.match(embeddings["collins_disguised"])[0] == COLLINS
    assert gallery.match(embeddings["hopper_disguised"])[0] == HOPPER


def test_gallery_round_trips_through_disk(
    tmp_path: Path, photos: dict[str, bytes], embeddings: dict[str, list[float]]
) -> None:
    gallery = FaceGallery(tmp_path)
    assert gallery.add(COLLINS, [photos["collins"], photos["collins_disguised"]]) == 2
    assert list(tmp_path.iterdir()) == [tmp_path / "gallery.json"]  # no temporary left over
    document = json.loads((tmp_path / "gallery.json").read_text())
    assert len(document["people"][COLLINS]) == 2

    reopened = FaceGallery(tmp_path)
    assert reopened.names() == [COLLINS]
    assert reopened.match(embeddings["collins"]) == gallery.match(embeddings["collins"])

    assert reopened.remove(COLLINS) is True
    assert reopened.remove(COLLINS) is False
    # The first instance sees the other's change on disk.
    assert gallery.names() == [] and gallery.match(embeddings["collins"]) is None
    assert FaceGallery(tmp_path).names() == []


def test_image_without_a_face_is_refused_and_nothing_is_enrolled(
    tmp_path: Path, photos: dict[str, bytes]
) -> None:
    gallery = FaceGallery(tmp_path)
    with pytest.raises(ValueError, match="image 1 for 'Eileen Collins' shows no face"):
        gallery.add(COLLINS, [photos["collins"], png_bytes(cat())])
    assert gallery.names() == [] and not gallery.path.exists()


def test_image_with_two_faces_is_refused(tmp_path: Path) -> None:
    pair = Image.new("RGB", (1112, 600), "white")
    pair.paste(astronaut(), (0, 44))
    pair.paste(grace_hopper(), (512, 0))
    with pytest.raises(ValueError, match="shows 2 faces"):
        FaceGallery(tmp_path).add(COLLINS, [png_bytes(pair)])


def test_enrolment_needs_a_name_and_an_image(tmp_path: Path, photos: dict[str, bytes]) -> None:
    gallery = FaceGallery(tmp_path)
    with pytest.raises(ValueError, match="must not be blank"):
        gallery.add("  ", [photos["collins"]])
    with pytest.raises(ValueError, match="no images"):
        gallery.add(COLLINS, [])


def test_match_rejects_an_embedding_of_the_wrong_size(collins_only: FaceGallery) -> None:
    with pytest.raises(ValueError, match="128-d"):
        collins_only.match([0.0] * 127)


def test_match_confidence_is_50_at_the_threshold_and_falls_with_distance() -> None:
    assert match_confidence(0.6) == 50.0
    assert match_confidence(0.0) > match_confidence(0.3) > 90 > match_confidence(0.5) > 50
