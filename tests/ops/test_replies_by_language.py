"""queries/athena/replies-by-language.sql on a real local lake (LocalLake, DuckDB)."""

from __future__ import annotations

import dataclasses

from magpie import reports
from magpie.lake import LocalLake

from chalicelib.events import MENTION, Analysis, MessageAnalysed, SendTweet, TwitterIds
from tests.ops.lakedata import envelope

AT = "2026-07-15T10:00:00Z"


def analysed(message_id: str, language: str | None) -> MessageAnalysed:
    return MessageAnalysed(
        Text="...", Author="ana", Twitter=TwitterIds(UserId="7", TweetId=message_id),
        MessageId=message_id, Kind=MENTION, Analysis=Analysis(Language=language),
        Language=language,
    )  # fmt: skip


def reply(message_id: str, language: str | None) -> SendTweet:
    return SendTweet(
        Text="...", ReplyToUserId="7", MessageId=message_id, Kind=MENTION, Language=language
    )


def test_replies_are_counted_by_the_writers_language_and_their_own(tmp_path):
    lake = LocalLake(tmp_path / "lake")
    history = [
        (analysed("1", "fr"), reply("1", "fr")),
        (analysed("2", "fr"), reply("2", "fr")),
        (analysed("3", "pt-BR"), reply("3", "pt")),  # Comprehend's tag, cut to "pt"
        (analysed("4", "fr"), reply("4", "en")),  # an English request in a French message
        (analysed("5", "cy"), reply("5", "en")),  # not spoken: English, said so
        (analysed("6", None), reply("6", "en")),  # emoji only
        (analysed("7", "es"), reply("7", None)),  # a reply from before replies said
    ]
    for event in (e for pair in history for e in pair):
        lake.write(envelope(event, AT))
    # At least once: a redelivered analysis and its reply published again count once.
    lake.write(envelope(dataclasses.replace(history[0][0]), AT))
    lake.write(envelope(history[0][1], AT))

    result = reports.run(reports.query_text("replies-by-language"), tmp_path / "lake")
    assert result.columns == ["message_language", "reply_language", "replies", "in_own_language"]
    assert result.rows == [
        ("fr", "fr", 2, True),
        ("cy", "en", 1, False),
        ("es", "(unknown)", 1, False),
        ("fr", "en", 1, False),
        ("pt", "pt", 1, True),
        ("und", "en", 1, False),
    ]
