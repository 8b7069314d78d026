"""No reply Magpie can write holds a URL: X bills a post with one $0.200, 20 times a summoned
reply (chalicelib/x_prices.json). A URL is what X's own parser reads as one (twitter-text:
a bare `will.i.am` is a link too).

The texts are read from whatever the files hold (bot.json and responders/content/, in every
language they carry), so a new line or a new locale is checked without editing this test.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.events import RejectedMedia
from chalicelib.responders import bot_definition
from chalicelib.responders.annotate import reply_text_for_people
from chalicelib.responders.fulfilment import CONTENT_DIR, fact_pool, joke_pool
from chalicelib.responders.handlers import unreadable_photos_text
from chalicelib.responders.languages import reply_texts
from chalicelib.x_cost import holds_url


def strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON value, with where it is."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{where}[{index}]")


def files() -> list[Path]:
    return [bot_definition.BOT_FILE, *sorted(CONTENT_DIR.rglob("*.json"))]


def test_the_texts_are_found():
    found = [s for path in files() for s in strings(json.loads(path.read_text()), path.name)]
    assert len(found) > 100  # the help, the replies, the reasons, jokes and facts


@pytest.mark.parametrize("path", files(), ids=lambda p: p.name)
def test_no_text_in_the_bot_definition_or_the_content_holds_a_url(path):
    texts = strings(json.loads(path.read_text(encoding="utf-8")), path.name)
    assert [(where, text) for where, text in texts if holds_url(text)] == []


@pytest.mark.parametrize("language", bot_definition.load_bot_definition().languages)
def test_no_joke_or_fact_the_bot_can_tell_holds_a_url(language):
    pool = joke_pool(language) + fact_pool(language)
    assert pool and [text for text in pool if holds_url(text)] == []


@pytest.mark.parametrize("language", bot_definition.load_bot_definition().languages)
def test_no_unreadable_photos_reply_holds_a_url(language):
    bot = reply_texts(language)
    reasons = [*bot.media_reasons, "a_reason_nobody_wrote"]
    replies = []
    for reason, other, partly, total in itertools.product(
        reasons, reasons, (False, True), (None, 1, 3)
    ):
        rejected = [RejectedMedia("https://pbs.twimg.com/media/a.jpg", reason)]
        if total == 3:
            rejected.append(RejectedMedia("https://pbs.twimg.com/media/b.jpg", other))
        replies.append(unreadable_photos_text(bot, rejected, total=total, partly=partly))
    assert [text for text in replies if holds_url(text)] == []


@pytest.mark.parametrize(
    "names",
    [["will.i.am"], ["Grace Hopper", "Will.i.am"], ["x.ai"], [], ["Mr. T.co"]],
)
@pytest.mark.parametrize("language", bot_definition.load_bot_definition().languages)
def test_a_recognised_name_x_would_read_as_a_link_is_not_sent_as_one(names, language):
    text = reply_text_for_people(names, reply_texts(language))
    assert not holds_url(text)
    for name in names:  # still readable: only the dot that makes it a link changes
        assert name.replace(".", "") in text.replace("\u2024", "").replace(".", "")


def test_loading_a_bot_definition_that_holds_a_url_warns_with_its_cost(caplog):
    raw = json.loads(bot_definition.BOT_FILE.read_text(encoding="utf-8"))
    raw["helpMessage"] = "Ask me for a joke. More at magpie.example.com"

    with caplog.at_level(logging.WARNING, logger=bot_definition.__name__):
        bot_definition.parse_bot_definition(raw)

    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "helpMessage" in warning and "magpie.example.com" in warning
    assert "$0.200" in warning and "$0.010" in warning


def test_loading_the_shipped_bot_definition_warns_of_nothing(caplog):
    raw = json.loads(bot_definition.BOT_FILE.read_text(encoding="utf-8"))
    with caplog.at_level(logging.WARNING, logger=bot_definition.__name__):
        bot_definition.parse_bot_definition(raw)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
