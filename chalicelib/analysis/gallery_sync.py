"""The known-faces gallery kept in a blob store: how the local face matcher runs in Lambda.

With IMAGE_PROVIDER=local on AWS (the "lite" profile) the gallery cannot live under
MAGPIE_HOME: each Lambda container has its own /tmp and the task root is read-only. The
gallery file is kept in S3 instead (FACE_GALLERY_BUCKET, key `known-faces/gallery.json`),
and each container works on a local copy that it refreshes when it is older than
`max_age_seconds`, so that a person enrolled with `magpie faces --aws add` is recognised
within minutes without a redeploy.

Enrolling and removing (an administrator's CLI, not the bot) pull the newest copy first,
change it and upload it. Two administrators enrolling at the very same moment could lose
one enrolment (last writer wins); the CLI is one person's tool, so this is not locked.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from chalicelib.analysis.gallery import GALLERY_FILE, FaceGallery
from chalicelib.blobs import BlobNotFound
from chalicelib.ports import BlobStore

logger = logging.getLogger(__name__)

GALLERY_KEY = f"known-faces/{GALLERY_FILE}"
DEFAULT_MAX_AGE_SECONDS = 300.0


class SyncedFaceGallery:
    """A FaceGallery whose file is mirrored from a blob store (same interface)."""

    def __init__(
        self,
        store: BlobStore,
        local_root: Path,
        *,
        key: str = GALLERY_KEY,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._key = key
        self._gallery = FaceGallery(local_root)
        self._max_age = max_age_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._pulled_at: float | None = None
        self._copy: bytes | None = None  # what the store held at the last pull

    @property
    def path(self) -> Path:
        return self._gallery.path

    @property
    def location(self) -> str:
        return f"{self._key} in the blob store (local copy {self.path})"

    # --- what the image analyser uses ---------------------------------------------------

    def match(self, embedding: Sequence[float]) -> tuple[str, float] | None:
        self._pull_if_stale()
        return self._gallery.match(embedding)

    def id_of(self, name: str) -> str:
        return self._gallery.id_of(name)

    # --- what `magpie faces --aws` uses -------------------------------------------------

    def names(self) -> list[str]:
        self._pull(force=True)
        return self._gallery.names()

    def add(self, name: str, images: Sequence[bytes]) -> int:
        self._pull(force=True)
        count = self._gallery.add(name, images)
        self._push()
        return count

    def remove(self, name: str) -> bool:
        self._pull(force=True)
        removed = self._gallery.remove(name)
        if removed:
            self._push()
        return removed

    # --- mirroring ----------------------------------------------------------------------

    def _fresh(self) -> bool:
        return self._pulled_at is not None and self._clock() - self._pulled_at < self._max_age

    def _pull_if_stale(self) -> None:
        try:
            self._pull(force=False)
        except Exception:
            if self._pulled_at is None:
                raise  # never had a copy: recognising nobody silently would be a lie
            # A copy a few minutes old names the same people; the next call tries again.
            logger.warning("could not refresh the face gallery; using the copy from earlier")

    def _pull(self, *, force: bool) -> None:
        with self._lock:
            if not force and self._fresh():
                return
            try:
                data: bytes | None = self._store.get(self._key)
            except BlobNotFound:
                data = None  # nobody enrolled yet
            if data != self._copy or self._pulled_at is None:
                self._write_local(data)
                self._copy = data
            self._pulled_at = self._clock()

    def _write_local(self, data: bytes | None) -> None:
        path = self._gallery.path
        if data is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".pulled")
        tmp.write_bytes(data)
        tmp.replace(path)

    def _push(self) -> None:
        data = self._gallery.path.read_bytes()
        with self._lock:
            self._store.put(self._key, data, "application/json")
            self._copy = data
            self._pulled_at = self._clock()
        logger.info("uploaded the face gallery to %s", self._key)
