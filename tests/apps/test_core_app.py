"""The core app's handlers through chalice.test: the steps the state machine calls."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber
from chalice.test import Client
from magpie.apps import load_app
from moto import mock_aws

from chalicelib import backend
from tests.conftest import BOT_ID

MESSAGE = {
    "Text": "@acme_helper_bot I love the new logo, great work!",
    "Author": "sample_user_ana",
    "MessageId": "300",
    "Kind": "MENTION",
    "ImageUrls": [],
    "Language": "en",
    "Twitter": {"UserId": "1712345678901234567", "TweetId": "300"},
    "SchemaVersion": "1",
}


@pytest.fixture
def client():
    with Client(load_app("core").app) as c:
        yield c


def invoke(client, name: str, payload: dict) -> dict:
    return client.lambda_.invoke(name, payload).payload


EXECUTION = "arn:aws:states:eu-west-1:123456789012:express:magpie-analysis:e1:a1b2c3d4"


def test_steps_chain_into_message_analysed_on_the_local_backend(local_env, client):
    downloaded = invoke(client, "download_media", {"Message": MESSAGE, "Execution": EXECUTION})
    assert downloaded == {"Message": MESSAGE, "Media": [], "Rejected": []}
    # The first step recorded which message its execution analyses.
    assert backend.analysis_executions().recall(EXECUTION) == MESSAGE
    text = invoke(client, "analyse_text", MESSAGE)
    assert text["TextSentiment"] == "POSITIVE"
    detail = invoke(
        client, "publish_analysis", {"Message": MESSAGE, "Text": text, "Images": [], "Rejected": []}
    )
    ((_, envelope),) = backend.local_bus_store().events_since(0)
    assert envelope["detail-type"] == "MESSAGE_ANALYSED"
    assert envelope["source"] == "magpie.analysis"
    assert envelope["detail"] == detail


def test_failed_step_publishes_the_catch_reason(local_env, client):
    detail = invoke(
        client,
        "publish_analysis_failed",
        {
            "Message": MESSAGE,
            "Error": {"Error": "States.Timeout", "Cause": "analyse_image timed out"},
        },
    )
    assert detail["Reason"] == "States.Timeout: analyse_image timed out"


def test_lex_fulfilment_answers_in_lex_v2_shape(local_env, client):
    event = {
        "sessionId": "s1",
        "inputTranscript": "tell me a fact",
        "invocationSource": "FulfillmentCodeHook",
        "messageVersion": "1.0",
        "inputMode": "Text",
        "bot": {
            "id": "B",
            "name": "MagpieBot",
            "aliasId": "A",
            "localeId": "en_GB",
            "version": "1",
        },
        "sessionState": {
            "intent": {
                "name": "Fact",
                "state": "ReadyForFulfillment",
                "slots": {},
                "confirmationState": "None",
            }
        },
    }
    response = invoke(client, "lex_fulfilment", event)
    assert response["sessionState"]["dialogAction"]["type"] == "Close"
    assert response["sessionState"]["intent"]["state"] == "Fulfilled"
    assert response["messages"][0]["content"]


@pytest.fixture
def aws_backend(aws_credentials, monkeypatch):
    with mock_aws():
        monkeypatch.setenv("MAGPIE_BACKEND", "aws")
        monkeypatch.setenv("TWITTER_BOT_USER_ID", BOT_ID)
        monkeypatch.setenv("MEDIA_BUCKET", "magpie-media")
        monkeypatch.setenv("TEXT_CAPABILITIES", "sentiment")
        backend.reset()
        boto3.client("s3").create_bucket(
            Bucket="magpie-media", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield
        backend.reset()


def test_analyse_text_on_aws_calls_only_the_enabled_capabilities(aws_backend, client):
    comprehend = backend.aws_client("comprehend")
    with Stubber(comprehend) as stub:
        stub.add_response(
            "detect_sentiment",
            {
                "Sentiment": "POSITIVE",
                "SentimentScore": {
                    "Positive": 0.97,
                    "Negative": 0.01,
                    "Neutral": 0.01,
                    "Mixed": 0.01,
                },
            },
            {"Text": ANY, "LanguageCode": "en"},
        )
        text = invoke(client, "analyse_text", MESSAGE)
        stub.assert_no_pending_responses()  # entities and key phrases were switched off
    assert text["TextSentiment"] == "POSITIVE"
    assert text["TextEntities"] == [] and text["Errors"] == []
    assert json.dumps(text)


@pytest.fixture
def lite_backend(aws_backend, monkeypatch):
    """The lite profile's analysis functions: local models on the AWS backend."""
    monkeypatch.setenv("TEXT_PROVIDER", "local")
    monkeypatch.setenv("IMAGE_PROVIDER", "local")
    monkeypatch.setenv("FACE_GALLERY_BUCKET", "magpie-faces")
    monkeypatch.delenv("TEXT_CAPABILITIES")
    backend.reset()
    boto3.client("s3").create_bucket(
        Bucket="magpie-faces", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )


def test_lite_analysis_steps_answer_with_local_models_and_the_s3_gallery(
    lite_backend, client, monkeypatch, tmp_path
):
    from magpie.cli import main

    from tests.analysis.images import astronaut, jpeg_bytes

    photo = jpeg_bytes(astronaut())
    known = tmp_path / "collins.jpg"
    known.write_bytes(photo)
    # An administrator enrols her into the bucket, as on a deployed lite stack ...
    monkeypatch.setenv("MAGPIE_HOME", str(tmp_path / "admin"))
    backend.reset()
    assert main(["faces", "--aws", "add", "Eileen Collins", str(known)]) == 0
    # ... and a Lambda container with its own /tmp copy recognises her.
    monkeypatch.setenv("MAGPIE_HOME", str(tmp_path / "lambda"))
    backend.reset()
    boto3.client("s3").put_object(Bucket="magpie-media", Key="media/300/0.jpg", Body=photo)
    # Stubbers with nothing queued: any Comprehend or Rekognition call would raise.
    with Stubber(backend.aws_client("comprehend")), Stubber(backend.aws_client("rekognition")):
        text = invoke(client, "analyse_text", MESSAGE)
        image = invoke(client, "analyse_image", {"Key": "media/300/0.jpg", "Url": "u"})
    assert text["TextSentiment"] == "POSITIVE"
    assert text["Errors"] == [] and image["Errors"] == []
    (celebrity,) = image["Analysis"]["CelebrityFaces"]
    assert celebrity["Name"] == "Eileen Collins"
    assert any(label["Name"] == "Person" for label in image["Analysis"]["Labels"])
