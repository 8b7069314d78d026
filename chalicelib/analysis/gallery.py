"""Known-faces gallery for the local backend: the offline stand-in for Rekognition's
celebrity recognition.

People are enrolled from photos; each photo must show exactly one face, whose 128-d dlib
embedding is stored under `root/gallery.json`. Matching follows dlib's guidance for its
ResNet face model: two faces whose embeddings lie within Euclidean distance 0.6 are the
same person (99.38% on LFW).

MatchConfidence (0-100) is derived from the distance `d` of the nearest enrolled face by
a logistic curve centred on the threshold:

    MatchConfidence = 100 / (1 + exp(12 * (d - 0.6)))

A face right at the threshold, where dlib's model is as likely wrong as right, scores 50;
distances typical of two photos of the same person (0.2-0.4) score 92-99; an identical
embedding scores 99.9. Faces beyond the threshold are not matched at all. It is a monotone
rescaling of the distance, not a calibrated probability (Rekognition does not publish how
it computes its own).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chalicelib.errors import InputError

logger = logging.getLogger(__name__)


class EnrolmentPhotoError(InputError):
    """An enrolment photo shows no face or several: `index` is its position among the
    images given, `found` what it shows ("no face", "2 faces")."""

    def __init__(self, message: str, *, index: int, found: str) -> None:
        super().__init__(message)
        self.index = index
        self.found = found


MATCH_THRESHOLD = 0.6
MATCH_STEEPNESS = 12.0
EMBEDDING_SIZE = 128
GALLERY_FILE = "gallery.json"
FORMAT_VERSION = 1


def person_id(name: str) -> str:
    """A stable Id for an enrolled person (the analogue of a Rekognition celebrity Id):
    derived from the name so it survives re-enrolment and rebuilding the gallery."""
    return "local-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def match_confidence(distance: float) -> float:
    """MatchConfidence 0-100 for an embedding distance (see module doc)."""
    return round(100.0 / (1.0 + math.exp(MATCH_STEEPNESS * (distance - MATCH_THRESHOLD))), 2)


class FaceGallery:
    """Enrolled people and their face embeddings, persisted as JSON under `root`.

    The file is re-read when another process (e.g. the CLI enrolling someone while the bot
    runs) has replaced it; writes are atomic (temporary file + rename)."""

    def __init__(self, root: Path) -> None:
        self._path = Path(root) / GALLERY_FILE
        self._lock = threading.Lock()
        self._people: dict[str, list[list[float]]] = {}
        self._stamp: tuple[int, int] | None = None
        self._matrix: Any = None  # numpy (n, 128) of all embeddings, built on demand
        self._owners: list[str] = []

    @property
    def path(self) -> Path:
        return self._path

    @property
    def location(self) -> str:
        return str(self._path)

    def add(self, name: str, images: Sequence[bytes]) -> int:
        """Enrol `name` from `images` (encoded bytes, each showing exactly one face) and
        return the number of faces enrolled. Adds to the person's existing faces, if any.

        Raises ValueError, enrolling nothing, if the name is blank, no image is given, or an
        image has no face or more than one."""
        name = _clean_name(name)
        if not images:
            raise ValueError(f"no images given to enrol {name!r}")
        embeddings = [_single_embedding(name, i, image) for i, image in enumerate(images)]
        with self._lock:
            self._refresh()
            self._people.setdefault(name, []).extend(embeddings)
            self._save()
        logger.info("enrolled %d face(s) for %r in %s", len(embeddings), name, self._path)
        return len(embeddings)

    def names(self) -> list[str]:
        with self._lock:
            self._refresh()
            return sorted(self._people)

    def id_of(self, name: str) -> str:
        return person_id(name)

    def remove(self, name: str) -> bool:
        """Forget `name`; returns False if nobody of that name was enrolled."""
        with self._lock:
            self._refresh()
            if self._people.pop(name, None) is None:
                return False
            self._save()
        logger.info("removed %r from %s", name, self._path)
        return True

    def match(self, embedding: Sequence[float]) -> tuple[str, float] | None:
        """The enrolled person nearest to `embedding` and the MatchConfidence, or None if
        nobody is within distance 0.6."""
        import numpy as np

        query = np.asarray(embedding, dtype=np.float64)
        if query.shape != (EMBEDDING_SIZE,):
            raise ValueError(f"expected a {EMBEDDING_SIZE}-d embedding, got shape {query.shape}")
        with self._lock:
            self._refresh()
            if not self._owners:
                return None
            distances = np.linalg.norm(self._matrix - query, axis=1)
            best = int(np.argmin(distances))
            owner, distance = self._owners[best], float(distances[best])
        if distance > MATCH_THRESHOLD:
            return None
        return owner, match_confidence(distance)

    # -- persistence ---------------------------------------------------------------------

    def _refresh(self) -> None:
        """Load the file if it changed since we last read or wrote it (lock held)."""
        try:
            st = self._path.stat()
        except FileNotFoundError:
            stamp = None
        else:
            stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        self._people = _read(self._path) if stamp is not None else {}
        self._stamp = stamp
        self._rebuild_index()

    def _save(self) -> None:
        """Atomically replace the gallery file with the in-memory state (lock held)."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        document = {"version": FORMAT_VERSION, "people": self._people}
        fd, tmp = tempfile.mkstemp(prefix=".gallery-", suffix=".tmp", dir=self._path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(document, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            # Never leave a half-written temporary file behind; the error still propagates.
            Path(tmp).unlink(missing_ok=True)
            raise
        st = self._path.stat()
        self._stamp = (st.st_mtime_ns, st.st_size)
        self._rebuild_index()

    def _rebuild_index(self) -> None:
        import numpy as np

        self._owners = [name for name, faces in self._people.items() for _ in faces]
        rows = [face for faces in self._people.values() for face in faces]
        self._matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), EMBEDDING_SIZE)


def _read(path: Path) -> dict[str, list[list[float]]]:
    document = json.loads(path.read_text(encoding="utf-8"))
    if document.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported gallery version {document.get('version')!r}")
    people = document["people"]
    for name, faces in people.items():
        for face in faces:
            if len(face) != EMBEDDING_SIZE or not all(math.isfinite(x) for x in face):
                raise ValueError(f"{path}: corrupt embedding for {name!r}")
    return people


def _clean_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise ValueError("a person's name must not be blank")
    return cleaned


def _single_embedding(name: str, index: int, image: bytes) -> list[float]:
    # Imported here: the gallery file can be listed or edited without loading dlib.
    from chalicelib.analysis.local_image import detect_faces

    faces = detect_faces(image)
    if len(faces) != 1:
        found = "no face" if not faces else f"{len(faces)} faces"
        raise EnrolmentPhotoError(
            f"image {index} for {name!r} shows {found}; enrol with photos of exactly one face",
            index=index,
            found=found,
        )
    return list(faces[0]["Embedding"])
