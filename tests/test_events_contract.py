"""Each event model against its JSON fixture: the contract other services rely on."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from chalicelib import events
from chalicelib.events import ContractError

FIXTURES = Path(__file__).parent / "fixtures" / "events"


@pytest.mark.parametrize("model", events.MODELS, ids=lambda m: m.DETAIL_TYPE)
def test_fixture_round_trips_through_the_model(model):
    fixture = json.loads((FIXTURES / f"{model.DETAIL_TYPE}.json").read_text())
    parsed = model.from_detail(fixture)
    assert parsed.to_detail() == fixture


@pytest.mark.parametrize("model", events.MODELS, ids=lambda m: m.DETAIL_TYPE)
def test_every_model_field_appears_in_its_fixture(model):
    fixture = json.loads((FIXTURES / f"{model.DETAIL_TYPE}.json").read_text())
    assert {f.name for f in dataclasses.fields(model)} == set(fixture)


@pytest.mark.parametrize("model", events.MODELS, ids=lambda m: m.DETAIL_TYPE)
def test_missing_required_field_is_a_contract_error(model):
    fixture = json.loads((FIXTURES / f"{model.DETAIL_TYPE}.json").read_text())
    required = [
        f.name
        for f in dataclasses.fields(model)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    for name in required:
        broken = {k: v for k, v in fixture.items() if k != name}
        with pytest.raises(ContractError, match=name):
            model.from_detail(broken)


def test_wrong_type_is_a_contract_error():
    fixture = json.loads((FIXTURES / "MESSAGE_RECEIVED.json").read_text())
    fixture["ImageUrls"] = "https://pbs.twimg.com/media/x.jpg"
    with pytest.raises(ContractError, match="ImageUrls"):
        events.MessageReceived.from_detail(fixture)


def test_images_is_always_an_array_even_for_text_only_messages():
    # The reference emitted {} for text-only messages, which broke its own Glue table.
    analysed = events.MessageAnalysed(
        Text="hi",
        Author="a",
        Twitter=events.TwitterIds(UserId="1"),
        MessageId="1",
        Kind=events.MENTION,
        Analysis=events.Analysis(),
    )
    assert analysed.to_detail()["Analysis"]["Images"] == []


def test_models_are_owned_by_their_producer():
    owners = {m.DETAIL_TYPE: m.SOURCE for m in events.MODELS}
    assert owners["MESSAGE_RECEIVED"] == "magpie.ingress"
    assert owners["MESSAGE_ANALYSED"] == "magpie.analysis"
    assert owners["SEND_TWEET"] == "magpie.responders"
    assert owners["TWEET_SENT"] == "magpie.egress"


@pytest.mark.parametrize("model", events.MODELS, ids=lambda m: m.DETAIL_TYPE)
def test_the_detail_is_byte_for_byte_its_fixture(model):
    """Key order included: what the bus, the lake and the archive store is unchanged."""
    text = (FIXTURES / f"{model.DETAIL_TYPE}.json").read_text()
    parsed = model.from_detail(json.loads(text))
    assert json.dumps(parsed.to_detail(), indent=2, ensure_ascii=False) + "\n" == text


def test_the_message_header_is_declared_once():
    header = ["Text", "Author", "Twitter", "MessageId", "Kind"]
    for model in (events.MessageReceived, events.MessageAnalysed, events.MessageAnalysisFailed):
        assert [f.name for f in dataclasses.fields(model)][:5] == header
        assert all(name not in model.__annotations__ for name in header)
    for model in (events.TweetSent, events.TweetFailed, events.ReplySkipped):
        assert [f.name for f in dataclasses.fields(model)][:2] == ["MessageId", "Kind"]


def test_positional_construction_is_unchanged_and_schema_version_is_last():
    skipped = events.ReplySkipped("7", events.MENTION, "not summoned", "42")
    assert list(skipped.to_detail()) == [
        "MessageId",
        "Kind",
        "Reason",
        "ReplyToUserId",
        "SchemaVersion",
    ]
