"""RekognitionImageAnalyser and enrol_known_face against botocore's Stubber.

moto has no RecognizeCelebrities; responses follow the Rekognition API reference (and its
botocore examples), and Stubber validates them and the requests against the service model."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from chalicelib.analysis.aws_image import (
    RekognitionImageAnalyser,
    enrol_known_face,
    external_image_id,
    name_from_external_image_id,
)
from chalicelib.analysis.retry import CapabilityDisabled
from chalicelib.ports import ImageAnalyser

SERVICE = "rekognition"  # the client fixture (conftest.py) is for this service

BUCKET = "magpie-media-123456789012"
KEY = "media/2024/05/01/1785432109876543210-0.jpg"
IMAGE = {"S3Object": {"Bucket": BUCKET, "Name": KEY}}
COLLECTION = "magpie-known-faces"

CELEBRITY_BOX = {"Width": 0.1875, "Height": 0.3344, "Left": 0.0984, "Top": 0.1417}
STRANGER_BOX = {"Width": 0.2469, "Height": 0.4401, "Left": 0.5328, "Top": 0.2049}
SMALL_BOX = {"Width": 0.0531, "Height": 0.0946, "Left": 0.8516, "Top": 0.6094}

DETECT_LABELS = {
    "Labels": [
        {
            "Name": "Person",
            "Confidence": 99.8729,
            "Instances": [
                {
                    "BoundingBox": {
                        "Width": 0.4312,
                        "Height": 0.9171,
                        "Left": 0.2807,
                        "Top": 0.0829,
                    },
                    "Confidence": 99.8729,
                }
            ],
            "Parents": [],
            "Aliases": [{"Name": "Human"}],
            "Categories": [{"Name": "Person Description"}],
        },
        {
            "Name": "Astronaut",
            "Confidence": 93.1042,
            "Instances": [],
            "Parents": [{"Name": "Person"}],
            "Aliases": [],
            "Categories": [{"Name": "Professions"}],
        },
    ],
    "LabelModelVersion": "3.0",
}


def polygon(box: dict[str, float]) -> list[dict[str, float]]:
    left, top, right, bottom = (
        box["Left"],
        box["Top"],
        box["Left"] + box["Width"],
        box["Top"] + box["Height"],
    )
    return [
        {"X": left, "Y": top},
        {"X": right, "Y": top},
        {"X": right, "Y": bottom},
        {"X": left, "Y": bottom},
    ]


LINE_BOX = {"Width": 0.5203, "Height": 0.0712, "Left": 0.2371, "Top": 0.4413}
WORD_BOX = {"Width": 0.2434, "Height": 0.0712, "Left": 0.2371, "Top": 0.4413}
NOISE_BOX = {"Width": 0.0412, "Height": 0.0208, "Left": 0.9012, "Top": 0.9511}
DETECT_TEXT = {
    "TextDetections": [
        {
            "DetectedText": "HELLO WORLD",
            "Type": "LINE",
            "Id": 0,
            "Confidence": 99.3521,
            "Geometry": {"BoundingBox": LINE_BOX, "Polygon": polygon(LINE_BOX)},
        },
        {
            "DetectedText": "~~",
            "Type": "LINE",
            "Id": 1,
            "Confidence": 41.0247,
            "Geometry": {"BoundingBox": NOISE_BOX, "Polygon": polygon(NOISE_BOX)},
        },
        {
            "DetectedText": "HELLO",
            "Type": "WORD",
            "Id": 2,
            "ParentId": 0,
            "Confidence": 99.4102,
            "Geometry": {"BoundingBox": WORD_BOX, "Polygon": polygon(WORD_BOX)},
        },
    ],
    "TextModelVersion": "3.0",
}

MODERATION = {
    "ModerationLabels": [
        {"Confidence": 88.2154, "Name": "Violence", "ParentName": "", "TaxonomyLevel": 1},
        {"Confidence": 88.2154, "Name": "Weapons", "ParentName": "Violence", "TaxonomyLevel": 2},
    ],
    "ModerationModelVersion": "7.0",
    "ContentTypes": [],
}


def compared_face(box: dict[str, float], confidence: float) -> dict[str, Any]:
    return {
        "BoundingBox": box,
        "Confidence": confidence,
        "Landmarks": [
            {
                "Type": "eyeLeft",
                "X": box["Left"] + 0.3 * box["Width"],
                "Y": box["Top"] + 0.4 * box["Height"],
            },
            {
                "Type": "eyeRight",
                "X": box["Left"] + 0.7 * box["Width"],
                "Y": box["Top"] + 0.4 * box["Height"],
            },
            {
                "Type": "nose",
                "X": box["Left"] + 0.5 * box["Width"],
                "Y": box["Top"] + 0.6 * box["Height"],
            },
        ],
        "Pose": {"Roll": -2.8164, "Yaw": 9.4102, "Pitch": 4.2381},
        "Quality": {"Brightness": 78.4521, "Sharpness": 86.8609},
        "Emotions": [{"Type": "HAPPY", "Confidence": 97.1234}],
        "Smile": {"Value": True, "Confidence": 96.5012},
    }


RECOGNIZE_CELEBRITIES = {
    "CelebrityFaces": [
        {
            "Urls": ["www.wikidata.org/wiki/Q312556"],
            "Name": "Jeff Bezos",
            "Id": "1SK7cR8M",
            "Face": compared_face(CELEBRITY_BOX, 99.9987),
            "MatchConfidence": 99.5873,
            "KnownGender": {"Type": "Male"},
        }
    ],
    "UnrecognizedFaces": [compared_face(STRANGER_BOX, 99.9921), compared_face(SMALL_BOX, 97.1126)],
}

CELEBRITY = {
    "Name": "Jeff Bezos",
    "Id": "1SK7cR8M",
    "MatchConfidence": 99.5873,
    "Face": {"BoundingBox": CELEBRITY_BOX, "Confidence": 99.9987},
}
STRANGER = {"BoundingBox": STRANGER_BOX, "Confidence": 99.9921}
SMALL_STRANGER = {"BoundingBox": SMALL_BOX, "Confidence": 97.1126}

SEARCH_PARAMS = {
    "CollectionId": COLLECTION,
    "Image": IMAGE,
    "MaxFaces": 1,
    "FaceMatchThreshold": 80.0,
}
ADA_FACE_ID = "38271d79-7bc2-5efb-b752-398a8d575b85"


def search_response(searched_box: dict[str, float], matches: bool = True) -> dict[str, Any]:
    face_matches = [
        {
            "Similarity": 99.9704,
            "Face": {
                "FaceId": ADA_FACE_ID,
                "BoundingBox": {"Width": 0.2422, "Height": 0.3234, "Left": 0.3233, "Top": 0.5},
                "ImageId": "d5631190-d039-54e4-b267-abd22c8647c5",
                "ExternalImageId": "Ada_Lovelace",
                "Confidence": 99.9983,
                "IndexFacesModelVersion": "7.0",
            },
        }
    ]
    return {
        # What SearchFacesByImage detects differs a little from RecognizeCelebrities' box.
        "SearchedFaceBoundingBox": {k: v + 0.004 for k, v in searched_box.items()},
        "SearchedFaceConfidence": 99.9991,
        "FaceMatches": face_matches if matches else [],
        "FaceModelVersion": "7.0",
    }


def make(client: Any, sleeps: list[float], **kwargs: Any) -> RekognitionImageAnalyser:
    return RekognitionImageAnalyser(client, BUCKET, sleep=sleeps.append, **kwargs)


# --- labels, text, moderation -------------------------------------------------------------


def test_labels(client: Any, stubber: Stubber, sleeps: list[float]) -> None:
    stubber.add_response("detect_labels", DETECT_LABELS, {"Image": IMAGE, "MinConfidence": 70.0})
    assert make(client, sleeps).labels(KEY) == [
        {"Name": "Person", "Confidence": 99.8729},
        {"Name": "Astronaut", "Confidence": 93.1042},
    ]


def test_throttled_labels_call_is_retried(
    client: Any, stubber: Stubber, sleeps: list[float]
) -> None:
    params = {"Image": IMAGE, "MinConfidence": 85.0}
    stubber.add_client_error(
        "detect_labels",
        service_error_code="ProvisionedThroughputExceededException",
        http_status_code=400,
        expected_params=params,
    )
    stubber.add_response("detect_labels", DETECT_LABELS, params)
    assert len(make(client, sleeps, min_confidence=85.0).labels(KEY)) == 2
    assert len(sleeps) == 1


def test_text_keeps_confident_lines_only(
    client: Any, stubber: Stubber, sleeps: list[float]
) -> None:
    stubber.add_response("detect_text", DETECT_TEXT, {"Image": IMAGE})
    assert make(client, sleeps).text(KEY) == [
        {
            "DetectedText": "HELLO WORLD",
            "Type": "LINE",
            "Confidence": 99.3521,
            "Geometry": {"BoundingBox": LINE_BOX},
        }
    ]


def test_moderation(client: Any, stubber: Stubber, sleeps: list[float]) -> None:
    stubber.add_response(
        "detect_moderation_labels", MODERATION, {"Image": IMAGE, "MinConfidence": 70.0}
    )
    assert make(client, sleeps).moderation(KEY) == [
        {"Name": "Violence", "Confidence": 88.2154, "ParentName": ""},
        {"Name": "Weapons", "Confidence": 88.2154, "ParentName": "Violence"},
    ]


# --- faces ---------------------------------------------------------------------------------


def test_faces_without_a_collection(client: Any, stubber: Stubber, sleeps: list[float]) -> None:
    stubber.add_response("recognize_celebrities", RECOGNIZE_CELEBRITIES, {"Image": IMAGE})
    assert make(client, sleeps).faces(KEY) == {
        "CelebrityFaces": [CELEBRITY],
        "UnrecognizedFaces": [STRANGER, SMALL_STRANGER],
    }


def test_known_face_is_named_from_the_collection(
    client: Any, stubber: Stubber, sleeps: list[float]
) -> None:
    stubber.add_response("recognize_celebrities", RECOGNIZE_CELEBRITIES, {"Image": IMAGE})
    stubber.add_response("search_faces_by_image", search_response(STRANGER_BOX), SEARCH_PARAMS)
    faces = make(client, sleeps, collection_id=COLLECTION).faces(KEY)
    assert faces == {
        "CelebrityFaces": [
            CELEBRITY,
            {
                "Name": "Ada Lovelace",
                "Id": ADA_FACE_ID,
                "MatchConfidence": 99.9704,
                "Face": STRANGER,
            },
        ],
        "UnrecognizedFaces": [SMALL_STRANGER],
    }


def test_no_collection_match_leaves_faces_unrecognised(
    client: Any, stubber: Stubber, sleeps: list[float]
) -> None:
    stubber.add_response("recognize_celebrities", RECOGNIZE_CELEBRITIES, {"Image": IMAGE})
    stubber.add_response(
        "search_faces_by_image", search_response(STRANGER_BOX, matches=False), SEARCH_PARAMS
    )
    faces = make(client, sleeps, collection_id=COLLECTION).faces(KEY)
    assert faces["UnrecognizedFaces"] == [STRANGER, SMALL_STRANGER]
    assert faces["CelebrityFaces"] == [CELEBRITY]


def test_a_match_on_the_celebrity_face_is_not_moved(
    client: Any, stubber: Stubber, sleeps: list[float]
) -> None:
    stubber.add_response("recognize_celebrities", RECOGNIZE_CELEBRITIES, {"Image": IMAGE})
    stubber.add_response("search_faces_by_image", search_response(CELEBRITY_BOX), SEARCH_PARAMS)
    faces = make(client, sleeps, collection_id=COLLECTION).faces(KEY)
    assert faces == {
        "CelebrityFaces": [CELEBRITY],
        "UnrecognizedFaces": [STRANGER, SMALL_STRANGER],
    }


def test_search_finding_no_face_is_not_an_error(
    client: Any, stubber: Stubber, sleeps: list[float]
) -> None:
    stubber.add_response("recognize_celebrities", RECOGNIZE_CELEBRITIES, {"Image": IMAGE})
    stubber.add_client_error(
        "search_faces_by_image",
        service_error_code="InvalidParameterException",
        service_message="There are no faces in the image. Should be at least 1.",
        expected_params=SEARCH_PARAMS,
    )
    faces = make(client, sleeps, collection_id=COLLECTION).faces(KEY)
    assert faces["UnrecognizedFaces"] == [STRANGER, SMALL_STRANGER]


def test_missing_collection_is_an_error(client: Any, stubber: Stubber, sleeps: list[float]) -> None:
    stubber.add_response("recognize_celebrities", RECOGNIZE_CELEBRITIES, {"Image": IMAGE})
    stubber.add_client_error(
        "search_faces_by_image",
        service_error_code="ResourceNotFoundException",
        expected_params=SEARCH_PARAMS,
    )
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        make(client, sleeps, collection_id=COLLECTION).faces(KEY)


def test_no_unrecognised_faces_means_no_search(
    client: Any, stubber: Stubber, sleeps: list[float]
) -> None:
    only_celebrity = {**RECOGNIZE_CELEBRITIES, "UnrecognizedFaces": []}
    stubber.add_response("recognize_celebrities", only_celebrity, {"Image": IMAGE})
    faces = make(client, sleeps, collection_id=COLLECTION).faces(KEY)
    assert faces == {"CelebrityFaces": [CELEBRITY], "UnrecognizedFaces": []}


# --- capabilities -------------------------------------------------------------------------


@pytest.mark.parametrize("capability", ["labels", "text", "faces", "moderation"])
def test_disabled_capability_makes_no_call(
    client: Any, stubber: Stubber, sleeps: list[float], capability: str
) -> None:
    others = frozenset({"labels", "text", "faces", "moderation"} - {capability})
    analyser = make(client, sleeps, capabilities=others, collection_id=COLLECTION)
    with pytest.raises(CapabilityDisabled) as raised:
        getattr(analyser, capability)(KEY)
    assert raised.value.capability == capability


def test_unknown_capability_is_rejected(client: Any) -> None:
    with pytest.raises(ValueError, match="celebrities"):
        RekognitionImageAnalyser(client, BUCKET, capabilities=frozenset({"celebrities"}))


def test_matches_the_image_analyser_port() -> None:
    for name in ("labels", "text", "faces", "moderation"):
        port = inspect.signature(getattr(ImageAnalyser, name))
        impl = inspect.signature(getattr(RekognitionImageAnalyser, name))
        assert list(port.parameters) == list(impl.parameters), name


# --- enrolment ----------------------------------------------------------------------------

PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01 not really a photo"
INDEX_PARAMS = {
    "CollectionId": COLLECTION,
    "Image": {"Bytes": PHOTO},
    "ExternalImageId": "Ada_Lovelace",
    "MaxFaces": 1,
    "QualityFilter": "AUTO",
    "DetectionAttributes": ["DEFAULT"],
}
INDEXED = {
    "FaceRecords": [
        {
            "Face": {
                "FaceId": ADA_FACE_ID,
                "BoundingBox": STRANGER_BOX,
                "ImageId": "465f4e93-763e-51d0-b030-b9667a2d94b1",
                "ExternalImageId": "Ada_Lovelace",
                "Confidence": 99.9991,
            },
            "FaceDetail": {
                "BoundingBox": STRANGER_BOX,
                "Confidence": 99.9991,
                "Pose": {"Pitch": -9.7136, "Roll": 4.7073, "Yaw": -24.4387},
                "Quality": {"Brightness": 29.2336, "Sharpness": 80.0},
            },
        }
    ],
    "FaceModelVersion": "7.0",
    "UnindexedFaces": [],
}


def test_enrol_creates_the_collection_and_indexes_the_face(client: Any, stubber: Stubber) -> None:
    stubber.add_response(
        "create_collection",
        {
            "StatusCode": 200,
            "CollectionArn": f"aws:rekognition:eu-west-1:123456789012:collection/{COLLECTION}",
            "FaceModelVersion": "7.0",
        },
        {"CollectionId": COLLECTION},
    )
    stubber.add_response("index_faces", INDEXED, INDEX_PARAMS)
    assert enrol_known_face(client, COLLECTION, "Ada Lovelace", PHOTO) == ADA_FACE_ID


def test_enrol_into_an_existing_collection(client: Any, stubber: Stubber) -> None:
    stubber.add_client_error(
        "create_collection",
        service_error_code="ResourceAlreadyExistsException",
        expected_params={"CollectionId": COLLECTION},
    )
    stubber.add_response("index_faces", INDEXED, INDEX_PARAMS)
    assert enrol_known_face(client, COLLECTION, "Ada Lovelace", PHOTO) == ADA_FACE_ID


def test_enrol_fails_when_the_collection_cannot_be_made(client: Any, stubber: Stubber) -> None:
    stubber.add_client_error("create_collection", service_error_code="AccessDeniedException")
    with pytest.raises(ClientError, match="AccessDeniedException"):
        enrol_known_face(client, COLLECTION, "Ada Lovelace", PHOTO)


def test_enrol_without_a_usable_face_says_why(client: Any, stubber: Stubber) -> None:
    stubber.add_client_error(
        "create_collection", service_error_code="ResourceAlreadyExistsException"
    )
    stubber.add_response(
        "index_faces",
        {
            "FaceRecords": [],
            "FaceModelVersion": "7.0",
            "UnindexedFaces": [
                {
                    "Reasons": ["LOW_SHARPNESS", "SMALL_BOUNDING_BOX"],
                    "FaceDetail": {"BoundingBox": SMALL_BOX, "Confidence": 61.2034},
                }
            ],
        },
        INDEX_PARAMS,
    )
    with pytest.raises(ValueError, match="LOW_SHARPNESS"):
        enrol_known_face(client, COLLECTION, "Ada Lovelace", PHOTO)


@pytest.mark.parametrize(
    ("name", "external_id"),
    [
        ("Ada Lovelace", "Ada_Lovelace"),
        ("  José   Pérez-García ", "Jos:0000e9_P:0000e9rez-Garc:0000eda"),
        ("Dr. J: O'Brien", "Dr._J:00003a_O:000027Brien"),
        ("李小龙", ":00674e:005c0f:009f99"),
        ("snake_case", "snake:00005fcase"),
        ("😀", ":01f600"),
    ],
)
def test_external_image_id_round_trips(name: str, external_id: str) -> None:
    assert external_image_id(name) == external_id
    assert re.fullmatch(r"[a-zA-Z0-9_.\-:]{1,255}", external_id)
    assert name_from_external_image_id(external_id) == " ".join(name.split())


def test_long_names_are_cut_at_a_whole_character() -> None:
    external_id = external_image_id("é" * 40)  # 7 characters each once encoded
    assert external_id == ":0000e9" * 36
    assert name_from_external_image_id(external_id) == "é" * 36


def test_external_image_id_needs_a_name() -> None:
    with pytest.raises(ValueError):
        external_image_id("   ")
