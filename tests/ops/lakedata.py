"""A small, known history of five messages, written to a real lake with LocalLake.

m1  ana  MENTION  POSITIVE, one photo (Person, Text; Eileen Collins)   -> sent (dry run)
m2  bob  MENTION  POSITIVE, text only                                  -> sent
m3  cy   DM       NEGATIVE, text only                                  -> skipped (rate_limited)
m4  ana  MENTION  POSITIVE, two photos (Eileen Collins + Grace Hopper;
                  Person twice)                                        -> failed (forbidden)
m5  dan  MENTION  analysis failed
m6  eve  MENTION  NEGATIVE but only mildly (below the alert threshold), not answered yet

plus the raw TWITTER_TWEETED of m1, the analysis of m1 delivered twice (Firehose is at
least once) and a replayed copy of m2's analysis: neither may count twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magpie.replay import replay_copy
from magpie.runtime import lake_targets

from chalicelib.bus.envelope import make_envelope
from chalicelib.events import (
    DIRECT_MESSAGE,
    MENTION,
    AnalysedImage,
    Analysis,
    ImageAnalysis,
    MessageAnalysed,
    MessageAnalysisFailed,
    MessageReceived,
    OutgoingEvent,
    ReplySkipped,
    SendTweet,
    TweetFailed,
    TweetSent,
    TwitterIds,
)


def envelope(model: Any, time: str) -> dict[str, Any]:
    event = model.to_event()
    return make_envelope(
        OutgoingEvent(event.source, event.detail_type, event.detail, time),
        account="000000000000",
        region="eu-west-1",
    )


def face(name: str, confidence: float = 95.0) -> dict[str, Any]:
    return {"Name": name, "Id": f"gallery:{name}", "MatchConfidence": confidence, "Face": {}}


def image(key: str, labels: list[tuple[str, float]], people: list[str]) -> AnalysedImage:
    return AnalysedImage(
        Key=key,
        Url=f"https://pbs.twimg.com/{key}",
        Analysis=ImageAnalysis(
            Labels=[{"Name": n, "Confidence": c} for n, c in labels],
            CelebrityFaces=[face(p) for p in people],
        ),
    )


def message(
    mid: str, author: str, text: str, kind: str = MENTION, received_at: str | None = None
) -> MessageReceived:
    ids = (
        TwitterIds(UserId=f"u-{author}", TweetId=mid)
        if kind == MENTION
        else TwitterIds(UserId=f"u-{author}", DirectMessageId=mid)
    )
    return MessageReceived(
        Text=text, Author=author, Twitter=ids, MessageId=mid, Kind=kind, ReceivedAt=received_at
    )


def analysed(
    received: MessageReceived, sentiment: str, images=(), negative: float | None = None
) -> MessageAnalysed:
    negative = negative if negative is not None else (0.9 if sentiment == "NEGATIVE" else 0.05)
    scores = {"Positive": 0.05, "Negative": negative, "Neutral": 0.05, "Mixed": 0.0}
    if sentiment == "POSITIVE":
        scores["Positive"] = 0.9
    return MessageAnalysed(
        Text=received.Text,
        Author=received.Author,
        Twitter=received.Twitter,
        MessageId=received.MessageId,
        Kind=received.Kind,
        Analysis=Analysis(TextSentiment=sentiment, SentimentScore=scores, Images=list(images)),
    )


def sent(received: MessageReceived, *, dry_run: bool, sent_at: str | None) -> TweetSent:
    return TweetSent(
        MessageId=received.MessageId,
        Kind=received.Kind,
        ReplyToUserId=received.Twitter.UserId,
        Text="reply",
        SentId="s-" + received.MessageId,
        DryRun=dry_run,
        SentAt=sent_at,
    )


def command(received: MessageReceived) -> SendTweet:
    return SendTweet(
        Text="reply",
        ReplyToUserId=received.Twitter.UserId,
        MessageId=received.MessageId,
        Kind=received.Kind,
    )


M1 = message("1001", "ana", "look at her", received_at="2026-07-15T09:59:50Z")
M2 = message("1002", "bob", "you are great")
M3 = message("2001", "cy", "awful bot", kind=DIRECT_MESSAGE)
M4 = message("1004", "ana", "who are they")
M5 = message("1005", "dan", "???")
M6 = message("1006", "eve", "meh, not great")

M1_ANALYSED_AT = "2026-07-15T10:00:02Z"
M2_ANALYSED_AT = "2026-07-15T11:00:01Z"
M4_ANALYSED_AT = "2026-07-16T09:00:02Z"


def history() -> list[dict[str, Any]]:
    """Every envelope of the story above, in time order, originals only."""
    m1_image = image("media/1001/0.jpg", [("Person", 99.0), ("Text", 88.0)], ["Eileen Collins"])
    m4_images = [
        image("media/1004/0.jpg", [("Person", 97.0)], ["Eileen Collins", "Grace Hopper"]),
        image("media/1004/1.jpg", [("Person", 95.0)], []),
    ]
    raw = make_envelope(
        OutgoingEvent(
            "magpie.ingress",
            "TWITTER_TWEETED",
            {"id_str": "1001", "text": "look at her", "user": {"screen_name": "ana"}},
            "2026-07-15T10:00:00Z",
        ),
        account="000000000000",
        region="eu-west-1",
    )
    failed = MessageAnalysisFailed(
        Text=M5.Text,
        Author=M5.Author,
        Twitter=M5.Twitter,
        MessageId=M5.MessageId,
        Kind=M5.Kind,
        Reason="boom",
    )
    return [
        raw,
        envelope(M1, "2026-07-15T10:00:00Z"),
        envelope(analysed(M1, "POSITIVE", [m1_image]), M1_ANALYSED_AT),
        envelope(command(M1), "2026-07-15T10:00:03Z"),
        envelope(sent(M1, dry_run=True, sent_at="2026-07-15T10:00:04Z"), "2026-07-15T10:00:05Z"),
        envelope(M2, "2026-07-15T11:00:00Z"),
        envelope(analysed(M2, "POSITIVE"), M2_ANALYSED_AT),
        envelope(command(M2), "2026-07-15T11:00:02Z"),
        envelope(sent(M2, dry_run=False, sent_at=None), "2026-07-15T11:00:10Z"),
        envelope(M3, "2026-07-16T08:00:00Z"),
        envelope(analysed(M3, "NEGATIVE"), "2026-07-16T08:00:01Z"),
        envelope(
            ReplySkipped(MessageId=M3.MessageId, Kind=M3.Kind, Reason="rate_limited"),
            "2026-07-16T08:00:02Z",
        ),
        envelope(M4, "2026-07-16T09:00:00Z"),
        envelope(analysed(M4, "POSITIVE", m4_images), M4_ANALYSED_AT),
        envelope(command(M4), "2026-07-16T09:00:03Z"),
        envelope(
            TweetFailed(MessageId=M4.MessageId, Kind=M4.Kind, Reason="forbidden", StatusCode=403),
            "2026-07-16T09:00:04Z",
        ),
        envelope(M5, "2026-07-16T10:00:00Z"),
        envelope(failed, "2026-07-16T10:00:09Z"),
        envelope(M6, "2026-07-16T11:00:00Z"),
        envelope(analysed(M6, "NEGATIVE", negative=0.4), "2026-07-16T11:00:01Z"),
    ]


def write_through_the_routes(lake_root: Path, envelopes: list[dict[str, Any]]) -> None:
    """Write as the runtime does: each envelope to the lake target whose pattern matches
    (Magpie's events at `lake_root`, X's raw items under its x-raw/)."""
    assert lake_root.name == "lake", "the runtime's lake is MAGPIE_HOME/lake"
    routes = lake_targets(lake_root.parent)
    for envelope in envelopes:
        for route in routes:
            if route.matches(envelope):
                route.handler(envelope, None)


def write_lake(lake_root: Path) -> list[dict[str, Any]]:
    """Write the history to a lake as Firehose would: with a duplicate and a replayed copy,
    each record under its route's prefix (X's raw items in x-raw/, as the runtime writes)."""
    envelopes = history()
    m1_analysis = next(e for e in envelopes if e["time"] == M1_ANALYSED_AT)
    m2_analysis = next(e for e in envelopes if e["time"] == M2_ANALYSED_AT)
    # m1's analysis delivered twice; m2's replayed from the archive.
    extra = [m1_analysis, replay_copy(m2_analysis, "replay-1")]
    write_through_the_routes(lake_root, [*envelopes, *extra])
    return envelopes
