"""The responders Chalice app: its two patterns split MESSAGE_ANALYSED as EventBridge would,
and each handler, invoked through chalice.test.Client, publishes onto the local bus."""

from __future__ import annotations

import copy
import json

import pytest
from chalice.test import Client
from magpie.apps import load_app

from chalicelib import backend
from chalicelib.bus.pattern import matches
from chalicelib.events import MessageAnalysed, utc_now_iso
from tests.analysis.images import astronaut, jpeg_bytes
from tests.conftest import ROOT

FIXTURE = json.loads((ROOT / "tests/fixtures/events/MESSAGE_ANALYSED.json").read_text())
SOURCE, DETAIL_TYPE = "magpie.analysis", "MESSAGE_ANALYSED"
PROJECT = str(ROOT / "responders")  # its .chalice/config.json: the dev stage, local backend


@pytest.fixture(scope="module")
def app():
    return load_app("responders").app


def patterns(app) -> dict[str, dict]:
    return {source.name: source.event_pattern for source in app.event_sources}


def with_images(count: int) -> dict:
    detail = copy.deepcopy(FIXTURE)
    first = detail["Analysis"]["Images"][0]
    detail["Analysis"]["Images"] = [
        dict(first, Key=f"media/2026/07/15/{detail['MessageId']}/{i}.jpg") for i in range(count)
    ]
    MessageAnalysed.from_detail(detail)  # a real MessageAnalysed detail
    return detail


def envelope(detail: dict, source: str = SOURCE, detail_type: str = DETAIL_TYPE) -> dict:
    return {
        "version": "0",
        "id": "1",
        "detail-type": detail_type,
        "source": source,
        "account": "000000000000",
        "time": "2026-07-15T14:03:42Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }


def routed_to(app, event: dict) -> list[str]:
    return sorted(name for name, pattern in patterns(app).items() if matches(pattern, event))


def test_the_app_subscribes_exactly_two_responders(app):
    assert sorted(patterns(app)) == ["image_responder", "text_responder"]


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, ["text_responder"]), (1, ["image_responder"]), (4, ["image_responder"])],
)
def test_each_message_reaches_exactly_one_responder(app, count, expected):
    assert routed_to(app, envelope(with_images(count))) == expected


def test_text_only_model_output_reaches_the_text_responder(app):
    # What MessageAnalysed.to_detail() writes for a text-only message: "Images": [].
    detail = MessageAnalysed.from_detail(with_images(0)).to_detail()
    assert detail["Analysis"]["Images"] == []
    assert routed_to(app, envelope(detail)) == ["text_responder"]


def test_a_detail_without_an_images_field_still_gets_a_text_reply(app):
    # Images is always an array by contract; if a producer ever drops it, the text responder
    # answers rather than nobody.
    detail = with_images(0)
    del detail["Analysis"]["Images"]
    assert routed_to(app, envelope(detail)) == ["text_responder"]


@pytest.mark.parametrize(
    ("source", "detail_type"),
    [
        ("magpie.ingress", DETAIL_TYPE),
        ("magpie.responders", DETAIL_TYPE),
        (SOURCE, "MESSAGE_ANALYSIS_FAILED"),
        (SOURCE, "MESSAGE_RECEIVED"),
    ],
)
def test_other_events_reach_no_responder(app, source, detail_type):
    for count in (0, 1):
        assert routed_to(app, envelope(with_images(count), source, detail_type)) == []


def bus_events() -> list[dict]:
    return [e for _, e in backend.local_bus_store().events_since(0)]


def test_text_responder_handler_publishes_send_tweet(local_env, app):
    detail = dict(with_images(0), Text="@acme_helper_bot tell me a joke", ReceivedAt=utc_now_iso())
    detail["Analysis"]["RejectedMedia"] = []  # a plain text message, no photo refused
    with Client(app, project_dir=PROJECT) as client:
        event = client.events.generate_cw_event(SOURCE, DETAIL_TYPE, detail, resources=[])
        client.lambda_.invoke("text_responder", event)

    (published,) = bus_events()
    assert (published["source"], published["detail-type"]) == ("magpie.responders", "SEND_TWEET")
    assert published["detail"]["Intent"] == "Joke"
    assert published["detail"]["ReplyToTweetId"] == detail["Twitter"]["TweetId"]


def test_image_responder_handler_stores_and_publishes(local_env, app):
    detail = with_images(1)
    key = detail["Analysis"]["Images"][0]["Key"]
    backend.blob_store().put(key, jpeg_bytes(astronaut()), "image/jpeg")
    with Client(app, project_dir=PROJECT) as client:
        event = client.events.generate_cw_event(SOURCE, DETAIL_TYPE, detail, resources=[])
        client.lambda_.invoke("image_responder", event)

    (published,) = bus_events()
    assert published["detail-type"] == "SEND_TWEET"
    # The fixture's second photo was refused as not an image: the reply says so.
    assert published["detail"]["Text"] == (
        "I recognised: Eileen Collins (I could not open 1 of your 2 photos: it is not a photo "
        "I can read.)"
    )
    (annotated,) = published["detail"]["ImageKeys"]
    assert annotated == key.replace("media/", "annotated/", 1)
    assert backend.blob_store().get(annotated).startswith(b"\xff\xd8\xff")


def test_handler_raises_on_a_broken_detail_so_the_bus_retries(local_env, app):
    # Parked for replay after the bus's retries: the Lambda invocation fails.
    detail = with_images(0)
    del detail["MessageId"]
    with Client(app, project_dir=PROJECT) as client:
        event = client.events.generate_cw_event(SOURCE, DETAIL_TYPE, detail, resources=[])
        with pytest.raises(Exception, match="MessageId"):
            client.lambda_.invoke("text_responder", event)
    assert bus_events() == []
