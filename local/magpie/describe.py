"""One line per event, for people: what `magpie demo` prints and the dashboard's feed shows."""

from __future__ import annotations

from typing import Any


def describe(envelope: dict[str, Any]) -> str:
    """One line per event: its type and what matters in it."""
    detail = envelope.get("detail") or {}
    kind = envelope.get("detail-type", "?")
    summary = _SUMMARIES.get(kind)
    text = summary(detail) if summary else _raw_summary(detail)
    return f"{kind:<24} {text}"


def _raw_summary(detail: dict[str, Any]) -> str:
    ident = detail.get("id_str") or detail.get("id") or detail.get("event_uuid") or ""
    return f"id={ident}" if ident else ""


def _received(detail: dict[str, Any]) -> str:
    images = len(detail.get("ImageUrls") or [])
    return (
        f"{detail.get('Kind')} {detail.get('MessageId')} from @{detail.get('Author')}: "
        f"{detail.get('Text')!r}" + (f" [{images} image(s)]" if images else "")
    )


# Entity types that are only a number ("two", "3rd", "5 kg", "10%", "$4"): spaCy's and
# Comprehend's names. On every card they were noise; names, places and dates stay.
NUMERIC_ENTITY_TYPES = frozenset({"CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY"})


def shown_entities(analysis: dict[str, Any]) -> list[str]:
    """The entities worth showing: every type but the numeric ones, each text once."""
    texts = (
        str(e.get("Text"))
        for e in analysis.get("TextEntities") or []
        if e.get("Text") and str(e.get("Type", "")).upper() not in NUMERIC_ENTITY_TYPES
    )
    return list(dict.fromkeys(texts))


def _analysed(detail: dict[str, Any]) -> str:
    analysis = detail.get("Analysis") or {}
    parts = [f"sentiment {analysis.get('TextSentiment')}"]
    entities = shown_entities(analysis)
    if entities:
        parts.append("entities " + ", ".join(entities))
    for image in analysis.get("Images") or []:
        inner = image.get("Analysis") or {}
        people = [c.get("Name") for c in inner.get("CelebrityFaces") or []]
        faces = len(people) + len(inner.get("UnrecognizedFaces") or [])
        parts.append(
            f"image {image.get('Key')}: {faces} face(s)"
            + (f", known: {', '.join(people)}" if people else "")
        )
    for rejected in analysis.get("RejectedMedia") or []:
        parts.append(f"media rejected ({rejected.get('Reason')})")
    for error in analysis.get("Errors") or []:
        parts.append(f"{error.get('Capability')} failed")
    return "; ".join(parts)


_SUMMARIES = {
    "MESSAGE_RECEIVED": _received,
    "MESSAGE_ANALYSED": _analysed,
    "MESSAGE_ANALYSIS_FAILED": lambda d: f"{d.get('MessageId')}: {d.get('Reason')}",
    "SEND_TWEET": lambda d: (
        f"reply to {d.get('MessageId')}: {d.get('Text')!r}"
        + (f" with {len(d.get('ImageKeys') or [])} image(s)" if d.get("ImageKeys") else "")
    ),
    "TWEET_SENT": lambda d: f"{d.get('SentId')} ({'dry run' if d.get('DryRun') else 'posted'})",
    "TWEET_FAILED": lambda d: f"{d.get('MessageId')}: {d.get('Reason')}",
    "REPLY_SKIPPED": lambda d: f"{d.get('MessageId')}: {d.get('Reason')}",
}
