"""Amazon Rekognition image analysis (MAGPIE_BACKEND=aws), in the ports.ImageAnalyser shapes.

Images are read by Rekognition straight from S3 (`S3Object {Bucket, Name}`): no bytes pass
through the Lambda. The client is injected, so boto3 is never imported here. Every call is
retried on throttling with `call_with_retries`.

Known faces: people the operator enrols with `enrol_known_face` go into a Rekognition face
collection, under an ExternalImageId made from their name. `faces()` reports them next to
celebrities, with that name.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

from chalicelib.analysis.retry import (
    CapabilityDisabled,
    aws_error_code,
    call_with_retries,
    is_throttling,
)

logger = logging.getLogger(__name__)

IMAGE_CAPABILITIES = frozenset({"labels", "text", "faces", "moderation"})

# ExternalImageId must match [a-zA-Z0-9_.\-:]+ and be at most 255 characters (IndexFaces API
# reference). A name is written reversibly within that: ASCII letters, digits, "." and "-"
# stay as they are, a space becomes "_", and every other character (accents, apostrophes,
# other scripts, "_" and ":" themselves) becomes ":" + its code point in 6 hex digits.
# So "José O'Neil" -> "Jos:0000e9_O:000027Neil", and the name reads back exactly.
_EXTERNAL_ID_KEPT = re.compile(r"[a-zA-Z0-9.\-]")
_EXTERNAL_ID_ESCAPE = re.compile(r":([0-9a-f]{6})")
_EXTERNAL_ID_MAX = 255

# SearchFacesByImage searches only the largest face in the image; its box is paired with
# the RecognizeCelebrities face it overlaps at least this much (intersection over union).
_SAME_FACE_IOU = 0.5


def _external_id_piece(char: str) -> str:
    if _EXTERNAL_ID_KEPT.fullmatch(char):
        return char
    if char == " ":
        return "_"
    return f":{ord(char):06x}"


def external_image_id(name: str) -> str:
    """The ExternalImageId that stands for `name` (encoding described above); whitespace
    is collapsed first, and a name too long is cut at a whole character."""
    pieces = [_external_id_piece(c) for c in " ".join(name.split())]
    if not pieces:
        raise ValueError("a known face needs a name")
    external_id = ""
    for piece in pieces:
        if len(external_id) + len(piece) > _EXTERNAL_ID_MAX:
            logger.warning("name %r is too long for an ExternalImageId; cut short", name)
            break
        external_id += piece
    return external_id


def name_from_external_image_id(external_id: str) -> str:
    """Inverse of `external_image_id`."""
    spaced = external_id.replace("_", " ")
    return _EXTERNAL_ID_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), spaced)


def _box(box: dict[str, Any]) -> dict[str, float]:
    return {k: box[k] for k in ("Width", "Height", "Left", "Top")}


def _iou(a: dict[str, float], b: dict[str, float]) -> float:
    width = min(a["Left"] + a["Width"], b["Left"] + b["Width"]) - max(a["Left"], b["Left"])
    height = min(a["Top"] + a["Height"], b["Top"] + b["Height"]) - max(a["Top"], b["Top"])
    if width <= 0 or height <= 0:
        return 0.0
    overlap = width * height
    return overlap / (a["Width"] * a["Height"] + b["Width"] * b["Height"] - overlap)


def _celebrity(item: dict[str, Any]) -> dict[str, Any]:
    face = item["Face"]
    return {
        "Name": item["Name"],
        "Id": item["Id"],
        "MatchConfidence": item["MatchConfidence"],
        "Face": {"BoundingBox": _box(face["BoundingBox"]), "Confidence": face["Confidence"]},
    }


def _unrecognised(face: dict[str, Any]) -> dict[str, Any]:
    return {"BoundingBox": _box(face["BoundingBox"]), "Confidence": face["Confidence"]}


class RekognitionImageAnalyser:
    """ImageAnalyser over Amazon Rekognition (see chalicelib.ports.ImageAnalyser)."""

    # One request per capability, each waiting ~0.5 s on the network: the analysis step
    # asks them side by side (botocore clients are thread-safe).
    waits_on_network = True

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        collection_id: str | None = None,
        capabilities: frozenset[str] = IMAGE_CAPABILITIES,
        min_confidence: float = 70.0,
        face_match_threshold: float = 80.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        unknown = set(capabilities) - IMAGE_CAPABILITIES
        if unknown:
            raise ValueError(f"unknown image capabilities: {sorted(unknown)}")
        self._client = client
        self._bucket = bucket
        self._collection_id = collection_id
        self._capabilities = frozenset(capabilities)
        self._min_confidence = min_confidence
        self._face_match_threshold = face_match_threshold
        self._sleep = sleep

    def _require(self, capability: str) -> None:
        if capability not in self._capabilities:
            raise CapabilityDisabled(capability)

    def _image(self, key: str) -> dict[str, Any]:
        if not key:
            raise ValueError("image key is empty")
        return {"S3Object": {"Bucket": self._bucket, "Name": key}}

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        method = getattr(self._client, operation)
        return call_with_retries(
            lambda: method(**params), retry_on=is_throttling, sleep=self._sleep
        )

    def labels(self, key: str) -> list[dict[str, Any]]:
        """[{"Name", "Confidence"}] at or above min_confidence."""
        self._require("labels")
        response = self._call(
            "detect_labels", Image=self._image(key), MinConfidence=self._min_confidence
        )
        return [{"Name": lb["Name"], "Confidence": lb["Confidence"]} for lb in response["Labels"]]

    def text(self, key: str) -> list[dict[str, Any]]:
        """Lines of text (WORDs repeat them) at or above min_confidence."""
        self._require("text")
        response = self._call("detect_text", Image=self._image(key))
        return [
            {
                "DetectedText": d["DetectedText"],
                "Type": "LINE",
                "Confidence": d["Confidence"],
                "Geometry": {"BoundingBox": _box(d["Geometry"]["BoundingBox"])},
            }
            for d in response["TextDetections"]
            if d["Type"] == "LINE" and d["Confidence"] >= self._min_confidence
        ]

    def moderation(self, key: str) -> list[dict[str, Any]]:
        """[{"Name", "Confidence", "ParentName"}] at or above min_confidence."""
        self._require("moderation")
        response = self._call(
            "detect_moderation_labels", Image=self._image(key), MinConfidence=self._min_confidence
        )
        return [
            {"Name": m["Name"], "Confidence": m["Confidence"], "ParentName": m["ParentName"]}
            for m in response["ModerationLabels"]
        ]

    def faces(self, key: str) -> dict[str, list[dict[str, Any]]]:
        """Celebrities, then (with a collection) the known face among the unrecognised ones.
        Faces that are neither stay in UnrecognizedFaces."""
        self._require("faces")
        response = self._call("recognize_celebrities", Image=self._image(key))
        celebrities = [_celebrity(c) for c in response["CelebrityFaces"]]
        unrecognised = [_unrecognised(f) for f in response["UnrecognizedFaces"]]
        if self._collection_id and unrecognised:
            known = self._known_face(key, unrecognised)
            if known is not None:
                index, person = known
                celebrities.append(person)
                del unrecognised[index]
        return {"CelebrityFaces": celebrities, "UnrecognizedFaces": unrecognised}

    def _search_collection(self, key: str) -> dict[str, Any] | None:
        """SearchFacesByImage's answer, or None when it finds no face to search with
        (InvalidParameterException): its detector can miss a face RecognizeCelebrities saw."""
        try:
            return self._call(
                "search_faces_by_image",
                CollectionId=self._collection_id,
                Image=self._image(key),
                MaxFaces=1,
                FaceMatchThreshold=self._face_match_threshold,
            )
        except Exception as exc:
            if aws_error_code(exc) != "InvalidParameterException":
                raise
            logger.warning("no face to search in the collection for %s: %s", key, exc)
            return None

    def _known_face(
        self, key: str, unrecognised: list[dict[str, Any]]
    ) -> tuple[int, dict[str, Any]] | None:
        """(index into `unrecognised`, celebrity-shaped entry) for the largest face when the
        collection knows it. Rekognition searches only the largest face, so at most one."""
        response = self._search_collection(key)
        if response is None or not response["FaceMatches"]:
            return None
        match = max(response["FaceMatches"], key=lambda m: m["Similarity"])
        external_id = match["Face"].get("ExternalImageId")
        if not external_id:
            logger.warning("face %s in the collection has no name", match["Face"]["FaceId"])
            return None
        searched = response["SearchedFaceBoundingBox"]
        overlaps = [_iou(searched, face["BoundingBox"]) for face in unrecognised]
        best = max(range(len(unrecognised)), key=overlaps.__getitem__)
        if overlaps[best] < _SAME_FACE_IOU:
            # The largest face is a celebrity already, or the detectors disagree.
            return None
        person = {
            "Name": name_from_external_image_id(external_id),
            "Id": match["Face"]["FaceId"],
            "MatchConfidence": match["Similarity"],
            "Face": unrecognised[best],
        }
        return best, person


def _create_collection_if_missing(
    client: Any, collection_id: str, sleep: Callable[[float], None]
) -> None:
    try:
        call_with_retries(
            lambda: client.create_collection(CollectionId=collection_id),
            retry_on=is_throttling,
            sleep=sleep,
        )
        logger.info("created Rekognition collection %s", collection_id)
    except Exception as exc:
        if aws_error_code(exc) != "ResourceAlreadyExistsException":
            raise


def enrol_known_face(
    client: Any,
    collection_id: str,
    name: str,
    image_bytes: bytes,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Index the one face in `image_bytes` (JPEG or PNG) as `name`; returns its FaceId.

    Creates the collection on first use. Raises ValueError when Rekognition indexes no face
    (none found, or too blurred, dark or small: its reasons are in the message)."""
    external_id = external_image_id(name)
    _create_collection_if_missing(client, collection_id, sleep)
    response = call_with_retries(
        lambda: client.index_faces(
            CollectionId=collection_id,
            Image={"Bytes": image_bytes},
            ExternalImageId=external_id,
            MaxFaces=1,  # the largest face: the person being enrolled
            QualityFilter="AUTO",
            DetectionAttributes=["DEFAULT"],
        ),
        retry_on=is_throttling,
        sleep=sleep,
    )
    records = response["FaceRecords"]
    if not records:
        reasons = [u.get("Reasons", []) for u in response.get("UnindexedFaces", [])]
        raise ValueError(f"no face of {name!r} was indexed; Rekognition's reasons: {reasons}")
    face_id = records[0]["Face"]["FaceId"]
    logger.info("enrolled %s as face %s in %s", external_id, face_id, collection_id)
    return face_id
