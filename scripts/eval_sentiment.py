"""Evaluate the local sentiment recipe: `make eval-sentiment`.

Quality: the committed head, as served (numpy), on the 2,000 TweetEval validation tweets. It
was fitted on the SemEval 2013-2016 tweets with these kept out (scripts/fit_sentiment_head.py),
so they are unseen by the fit, though its choices (C, class weights, the utterances' weight)
were made on them. Reports macro-averaged recall (the TweetEval metric), accuracy and
per-class recall of the 3-way decision, the share of posts the MIXED rule relabels, the
alert rule's precision and recall, and plain VADER on the same tweets for comparison.

Speed: the real provider (`E5Sentiment` with the committed head), per post, one post per call
and in batches; plus cold start (first call, engine + head load).

Prints a table and writes bench/results/sentiment.json.
Usage: .venv/bin/python scripts/eval_sentiment.py [--data DIR] [--out FILE] [--latency-posts N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # chalicelib
sys.path.insert(0, str(Path(__file__).resolve().parent))  # fit_sentiment_head

from fit_sentiment_head import (  # noqa: E402
    DATA_DIR,
    compute_features,
    load_dataset,
)

from chalicelib.analysis.sentiment import (  # noqa: E402
    E5_MIXED_THRESHOLD,
    HEAD_CLASSES,
    HEAD_PATH,
    VADER_KEYS,
    E5Sentiment,
    SentimentScorer,
    VaderSentiment,
    load_head,
    vader_label,
)

logger = logging.getLogger(__name__)

OUT_PATH = ROOT / "bench" / "results" / "sentiment.json"
BATCH = 16


def metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, object]:
    """Macro recall, accuracy and per-class recall for labels 0..2."""
    recalls = {
        name: float(np.mean(predicted[truth == k] == k)) for k, name in enumerate(HEAD_CLASSES)
    }
    return {
        "macro_recall": float(np.mean(list(recalls.values()))),
        "accuracy": float(np.mean(predicted == truth)),
        "per_class_recall": recalls,
    }


def committed_head(features: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    """The committed head's 3-way decision, MIXED share and alert rule on these tweets."""
    from chalicelib.alerts import ALERT_MIN_NEGATIVE_SCORE

    proba = load_head(HEAD_PATH).predict_proba(features)
    mixed = np.minimum(proba[:, 0], proba[:, 2]) >= E5_MIXED_THRESHOLD
    alerted = proba[:, 0] >= ALERT_MIN_NEGATIVE_SCORE
    negative = labels == HEAD_CLASSES.index("NEGATIVE")
    by_truth = np.bincount(labels[mixed], minlength=len(HEAD_CLASSES))
    return {
        **metrics(labels, proba.argmax(axis=1)),
        "mixed_share": float(mixed.mean()),
        "mixed_by_true_label": dict(zip(HEAD_CLASSES, by_truth.tolist(), strict=True)),
        "alert_rule": {
            "min_negative_score": ALERT_MIN_NEGATIVE_SCORE,
            "alerted": int(alerted.sum()),
            "precision": float(negative[alerted].mean()) if alerted.any() else None,
            "recall": float(alerted[negative].mean()),
        },
    }


def vader_baseline(features: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    """Plain VADER's compound rule, read from the features' last column."""
    compound = features[:, VADER_KEYS.index("compound") - len(VADER_KEYS)]
    predicted = np.array([HEAD_CLASSES.index(vader_label(c)) for c in compound])
    return metrics(labels, predicted)


def latency(scorer: SentimentScorer, texts: Sequence[str], posts: int) -> dict[str, float]:
    """Milliseconds per post: cold first call, then one post per call, then batches."""
    started = time.perf_counter()
    scorer.score([texts[0]])
    cold_ms = (time.perf_counter() - started) * 1000
    single = []
    for text in texts[:posts]:
        started = time.perf_counter()
        scorer.score([text])
        single.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    for i in range(0, posts, BATCH):
        scorer.score(texts[i : min(i + BATCH, posts)])
    batched = (time.perf_counter() - started) * 1000 / posts
    return {
        "cold_first_call_ms": cold_ms,
        "single_mean_ms": statistics.fmean(single),
        "single_p50_ms": statistics.median(single),
        "single_p95_ms": float(np.percentile(single, 95)),
        f"batched_{BATCH}_per_post_ms": batched,
        "posts": posts,
    }


def machine() -> dict[str, object]:
    """Where the figures were taken; the load average says how shared the cores were."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "python": platform.python_version(),
    }


def print_table(report: dict[str, Any]) -> None:
    print(f"\nLocal sentiment on TweetEval val ({report['tweets']} tweets, not fitted on)")
    columns = ("macro rec", "accuracy", "neg rec", "neu rec", "pos rec")
    print(f"{'provider':<10}" + "".join(f"{c:>10}" for c in columns))
    for name in ("e5", "vader"):
        m = report[name]
        r = m["per_class_recall"]
        print(
            f"{name:<10}{m['macro_recall']:>10.3f}{m['accuracy']:>10.3f}"
            f"{r['NEGATIVE']:>10.3f}{r['NEUTRAL']:>10.3f}{r['POSITIVE']:>10.3f}"
        )
    print(f"e5 posts relabelled MIXED: {report['e5']['mixed_share']:.1%}")
    for name in ("e5", "vader"):
        lat = report["latency"][name]
        print(
            f"{name} latency per post: single mean {lat['single_mean_ms']:.1f} ms "
            f"(p50 {lat['single_p50_ms']:.1f}, p95 {lat['single_p95_ms']:.1f}), "
            f"batched x{BATCH} {lat[f'batched_{BATCH}_per_post_ms']:.1f} ms, "
            f"cold first call {lat['cold_first_call_ms']:.0f} ms"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--out", type=Path, default=OUT_PATH)
    parser.add_argument("--latency-posts", type=int, default=200)
    parser.add_argument(
        "--latency-only", action="store_true", help="skip the quality figures (print, no JSON)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    texts, labels = load_dataset(args.data)
    # Latency first, on a quiet process, with the committed head as served.
    e5 = E5Sentiment()
    lat = {"e5": latency(e5, texts, args.latency_posts)}
    if e5.name != "e5":
        raise RuntimeError("the e5 provider fell back to VADER; see the warning above")
    lat["vader"] = latency(VaderSentiment(), texts, args.latency_posts)
    host = machine()  # now, so the load average is the one the latency saw
    if args.latency_only:
        print(json.dumps({"latency": lat, "machine": host}, indent=2))
        return 0

    features = compute_features(texts)
    report = {
        "tweets": len(texts),
        "e5": committed_head(features, labels),
        "vader": vader_baseline(features, labels),
        "latency": lat,
        "machine": host,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_table(report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
