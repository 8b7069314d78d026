"""Replies in the writer's language: the share of corpus messages answered in their own.

`python -m bench.languages [--quick]` writes bench/results/languages.json (`make bench` runs
it as its `languages` step).

Each corpus message goes the way the local pipeline takes it, in this process: the signed
delivery's item through ingress's translation (X's `lang` kept), the photos downloaded from
a media mirror of the corpus's scenes, the real text analysis (language detection and
sentiment: entities and key phrases are left off, they do not touch the reply), the real
image analysis with the bench's known faces enrolled, then the real responders on the local
bot. The bus, its dispatcher and egress are left out: they never change a reply's words
(`make bench`'s `local` step measures them).

A reply counts as in the writer's language when the project's own detector (the one the
analysis uses) finds in the reply's text the language the corpus says the message is in;
SEND_TWEET's own `Language` is reported beside it, not trusted for the share; an English
joke or fact told after a language's "none in your language yet" note counts as English.
Messages the corpus marks undetermined (`und`: emoji, a bare mention) have no language of
their own to be answered in: they are counted apart (English is their answer). A message left
unanswered (REPLY_SKIPPED: an explicit photo) is not a reply and is counted apart too.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench import payloads
from bench.environment import SCRATCH_DIR, machine, write_result

GOAL = 0.9
DELIVERY_SIZE = 50  # items per webhook delivery (ingress takes at most 100)
UNDETERMINED = "und"


def reply_language(text: str, said: str | None) -> str:
    """The reply's language, as the analysis would detect it; "en" for English content after
    a language's "not in your language yet" note, however the note's words sway the detector."""
    from chalicelib.analysis.local_text import LocalTextAnalyser
    from chalicelib.analysis.text_prep import strip_for_analysis
    from chalicelib.responders.languages import reply_texts

    note = reply_texts(said or "en").english_only
    if note and text.startswith(note):
        return "en"
    return str(LocalTextAnalyser().detect_language(strip_for_analysis(text))["LanguageCode"])


def answer(received: dict[str, Any]) -> Any:
    """SEND_TWEET or REPLY_SKIPPED for one MESSAGE_RECEIVED detail, through the real steps."""
    from chalicelib.analysis import steps
    from chalicelib.analysis.orchestrator import analysis_state
    from chalicelib.responders.handlers import respond_to_images, respond_to_text

    detail = steps.build_analysed(analysis_state(received)).to_detail()
    return respond_to_images(detail) if detail["Analysis"]["Images"] else respond_to_text(detail)


def measure(messages: list[dict[str, Any]], home: Path) -> dict[str, Any]:
    from magpie.runtime import configure_environment

    from bench.aws_cost import enrol_known_faces
    from chalicelib import backend
    from chalicelib.events import SendTweet
    from chalicelib.ingress.activity import translate

    mirror = payloads.write_media_mirror(home / "mirror", messages)
    configure_environment(
        home / "magpie",
        TWITTER_BOT_USER_ID=payloads.BOT_USER_ID,
        MAGPIE_MEDIA_MIRROR=str(mirror),
        TEXT_CAPABILITIES="language,sentiment",
    )
    enrol_known_faces(backend.face_gallery())
    truth = {m["id"]: m["language"] for m in messages}
    received_all = [
        received
        for start in range(0, len(messages), DELIVERY_SIZE)
        for received in translate(
            json.loads(payloads.delivery(messages[start : start + DELIVERY_SIZE])),
            payloads.BOT_USER_ID,
        ).messages
    ]
    rows, seconds = [], []
    for received in received_all:
        started = time.perf_counter()
        outcome = answer(received.to_detail())
        seconds.append(time.perf_counter() - started)
        row: dict[str, Any] = {"id": received.MessageId, "language": truth[received.MessageId]}
        if isinstance(outcome, SendTweet):
            row.update(
                replied=True,
                intent=outcome.Intent,
                said=outcome.Language,
                detected=reply_language(outcome.Text, outcome.Language),
                text=outcome.Text,
            )
        else:
            row.update(replied=False, reason=outcome.Reason)
        rows.append(row)
    return summarise(rows, seconds)


def summarise(rows: list[dict[str, Any]], seconds: list[float]) -> dict[str, Any]:
    """The share answered in their own language, overall and per language."""
    replied = [r for r in rows if r["replied"]]
    with_language = [r for r in replied if r["language"] != UNDETERMINED]
    own = [r for r in with_language if r["detected"] == r["language"]]
    by_language: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        counts = by_language[row["language"]]
        counts["messages"] += 1
        if row["replied"]:
            counts["replied"] += 1
            counts["in_own_language"] += row["detected"] == row["language"]
            counts[f"reply_{row['detected']}"] += 1
    share = len(own) / len(with_language) if with_language else float("nan")
    return {
        "machine": machine(),
        "messages": len(rows),
        "replied": len(replied),
        "skipped": len(rows) - len(replied),
        "replied_with_a_language": len(with_language),
        "answered_in_own_language": len(own),
        "share_in_own_language": round(share, 4),
        "goal": GOAL,
        "undetermined_answered_in_english": sum(
            r["detected"] == "en" for r in replied if r["language"] == UNDETERMINED
        ),
        "said_language_agrees_with_detector": sum(r["said"] == r["detected"] for r in replied),
        "by_language": {lang: dict(c) for lang, c in sorted(by_language.items())},
        "missed": [
            {k: r[k] for k in ("id", "language", "detected", "said", "intent", "text")}
            for r in with_language
            if r["detected"] != r["language"]
        ],
        "seconds_per_message_median": round(sorted(seconds)[len(seconds) // 2], 4)
        if seconds
        else None,
    }


def run(quick: bool = False) -> dict[str, Any]:
    corpus = payloads.messages()
    # A quick run keeps every language, with and without photos: every fourth message of
    # each language's texts and of its photos.
    grouped = sorted(corpus, key=lambda m: (m["language"], bool(m["images"]), m["id"]))
    messages = grouped[::4] if quick else corpus
    SCRATCH_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=SCRATCH_DIR, prefix="languages-") as tmp:
        result = measure(messages, Path(tmp))
    result["quick"] = quick
    return result


def table(result: dict[str, Any]) -> str:
    lines = ["language  messages  replied  in own language"]
    for lang, c in result["by_language"].items():
        lines.append(
            f"{lang:<9} {c['messages']:>8} {c.get('replied', 0):>8} "
            f"{c.get('in_own_language', 0):>16}"
        )
    lines.append(
        f"share answered in their own language: {result['share_in_own_language']:.1%} "
        f"({result['answered_in_own_language']}/{result['replied_with_a_language']}; "
        f"goal {result['goal']:.0%})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a quarter of the corpus")
    args = parser.parse_args(argv)
    result = run(args.quick)
    path = write_result("languages", result)
    print(table(result))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
