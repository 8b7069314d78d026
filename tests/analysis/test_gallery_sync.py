"""The known-faces gallery kept in S3 (moto) for the lite profile, with the real dlib models.

Two SyncedFaceGallery objects with separate local folders stand for the administrator's CLI
and a Lambda container: what one enrols, the other recognises once its copy is refreshed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.analysis.gallery_sync import GALLERY_KEY, SyncedFaceGallery
from chalicelib.analysis.local_image import detect_faces
from chalicelib.blobs import S3BlobStore

from .images import astronaut, grace_hopper, png_bytes

BUCKET = "magpie-faces"
COLLINS = "Eileen Collins"
HOPPER = "Grace Hopper"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return {"collins": png_bytes(astronaut()), "hopper": png_bytes(grace_hopper())}


@pytest.fixture(scope="module")
def embeddings(photos: dict[str, bytes]) -> dict[str, list[float]]:
    return {name: detect_faces(photo)[0]["Embedding"] for name, photo in photos.items()}


@pytest.fixture
def s3(aws_credentials) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


def gallery(s3: Any, root, clock: Clock, **kwargs: Any) -> SyncedFaceGallery:
    return SyncedFaceGallery(S3BlobStore(s3, BUCKET), root, clock=clock, **kwargs)


def test_an_empty_bucket_means_nobody_is_known(s3, tmp_path, clock, embeddings):
    container = gallery(s3, tmp_path / "lambda", clock)
    assert container.match(embeddings["collins"]) is None
    assert container.names() == []


def test_whom_the_cli_enrols_a_lambda_container_recognises(s3, tmp_path, clock, photos, embeddings):
    admin = gallery(s3, tmp_path / "admin", clock)
    assert admin.add(COLLINS, [photos["collins"]]) == 1
    assert GALLERY_KEY in [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]

    container = gallery(s3, tmp_path / "lambda", clock)
    name, confidence = container.match(embeddings["collins"])
    assert (name, confidence > 99) == (COLLINS, True)
    assert container.match(embeddings["hopper"]) is None
    assert container.id_of(COLLINS) == admin.id_of(COLLINS)


def test_a_container_sees_changes_once_its_copy_is_older_than_max_age(
    s3, tmp_path, clock, photos, embeddings
):
    admin = gallery(s3, tmp_path / "admin", clock)
    container = gallery(s3, tmp_path / "lambda", clock, max_age_seconds=300)
    assert container.match(embeddings["hopper"]) is None  # pulled: empty

    admin.add(HOPPER, [photos["hopper"]])
    clock.now += 299
    assert container.match(embeddings["hopper"]) is None  # its copy is still fresh
    clock.now += 2
    assert container.match(embeddings["hopper"])[0] == HOPPER

    assert admin.remove(HOPPER) is True
    clock.now += 301
    assert container.match(embeddings["hopper"]) is None


def test_enrolling_keeps_people_another_admin_enrolled(s3, tmp_path, clock, photos):
    first = gallery(s3, tmp_path / "one", clock)
    second = gallery(s3, tmp_path / "two", clock)
    first.add(COLLINS, [photos["collins"]])
    second.add(HOPPER, [photos["hopper"]])  # pulls Collins first, so she stays
    assert first.names() == [COLLINS, HOPPER]


class FailingStore:
    """S3 unreachable after the first read (an adapter, not a mock)."""

    def __init__(self, store: S3BlobStore) -> None:
        self.store = store
        self.reads = 0

    def get(self, key: str) -> bytes:
        self.reads += 1
        if self.reads > 1:
            raise ConnectionError("S3 is unreachable")
        return self.store.get(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.store.put(key, data, content_type)


def test_a_failed_refresh_keeps_the_earlier_copy_and_says_so(
    s3, tmp_path, clock, photos, embeddings, caplog
):
    gallery(s3, tmp_path / "admin", clock).add(COLLINS, [photos["collins"]])
    store = FailingStore(S3BlobStore(s3, BUCKET))
    container = SyncedFaceGallery(store, tmp_path / "lambda", clock=clock)
    assert container.match(embeddings["collins"])[0] == COLLINS
    clock.now += 301
    with caplog.at_level(logging.WARNING):
        assert container.match(embeddings["collins"])[0] == COLLINS
    assert store.reads == 2
    assert "could not refresh the face gallery" in caplog.text


def test_without_any_copy_a_failed_read_is_an_error_not_an_empty_gallery(
    s3, tmp_path, clock, embeddings
):
    store = FailingStore(S3BlobStore(s3, BUCKET))
    store.reads = 1  # the very first read fails
    container = SyncedFaceGallery(store, tmp_path / "lambda", clock=clock)
    with pytest.raises(ConnectionError):
        container.match(embeddings["collins"])
