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
