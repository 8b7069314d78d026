"""The committed corpus is what its script generates, and has the mix the benchmark needs."""

from __future__ import annotations

import json
from collections import Counter

from bench import make_corpus, payloads
from chalicelib.ingress.activity import translate


def test_committed_corpus_matches_the_generator():
    assert make_corpus.MESSAGES_FILE.read_text(encoding="utf-8") == make_corpus.dump(
        make_corpus.build_corpus()
    )
    assert make_corpus.SCENES_FILE.read_text(encoding="utf-8") == make_corpus.dump(
        make_corpus.build_scenes()
    )


def test_corpus_mix():
    messages = payloads.messages()
    photos = Counter(len(m["images"]) for m in messages)
    assert len(messages) >= 200
    assert photos[0] == len(messages) // 2
    assert set(photos) - {0} == {1, 2, 3, 4}
    assert len({m["language"] for m in messages}) >= 6
    assert {m["sentiment"] for m in messages} == {"POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED"}
    assert {"Joke", "Fact"} <= {m["intent"] for m in messages}
    scenes = {i["scene"] for m in messages for i in m["images"]}
    assert {"known_person", "celebrity", "group", "stranger"} <= scenes


def test_every_message_becomes_one_message_received_with_its_photos():
    bot = payloads.corpus()["bot_user_id"]
    for message in payloads.messages():
        translation = translate(json.loads(payloads.delivery([message])), bot)
        (received,) = translation.messages
        assert received.MessageId == message["id"]
        assert len(received.ImageUrls) == len(message["images"])
