"""The analysis workflow end to end on the local backend, with the real local models."""

from __future__ import annotations

import functools
import io
import shutil
import threading

import pytest
from magpie.runtime import Runtime
from PIL import Image

from chalicelib import backend
from chalicelib.analysis import orchestrator, steps
from chalicelib.bus.local import LocalBusStore
from tests.conftest import ROOT

MIRROR = ROOT / "examples" / "media-mirror"
KNOWN = ROOT / "examples" / "known-faces" / "eileen-collins.jpg"
ASTRONAUT_URL = "https://pbs.twimg.com/media/HaXmP1aWAAEq3Zk.jpg"
HOPPER_URL = "https://pbs.twimg.com/media/HaXmP1bXsAAr7Lp.jpg"


def message(
    text: str,
    *,
    images: list[str] | None = None,
    language: str | None = "en",
    message_id: str = "100",
) -> dict:
    return {
        "Text": text,
        "Author": "sample_user_ana",
        "MessageId": message_id,
        "Kind": "MENTION",
        "Twitter": {"UserId": "1712345678901234567", "TweetId": message_id},
        "ImageUrls": images or [],
        "Language": language,
        "ReceivedAt": "2026-07-15T14:03:41Z",
        "SchemaVersion": "1",
    }


@pytest.fixture
def mirror_env(local_env, monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR, mirror)
    monkeypatch.setenv("MAGPIE_MEDIA_MIRROR", str(mirror))
    backend.reset()
    backend.face_gallery().add("Eileen Collins", [KNOWN.read_bytes()])
    return mirror


def published(detail_type: str) -> list[dict]:
    store: LocalBusStore = backend.local_bus_store()
    return [env["detail"] for _, env in store.events_since(0) if env["detail-type"] == detail_type]


def test_text_only_message_is_analysed_with_an_empty_images_array(local_env):
    detail = orchestrator.analyse(message("@acme_helper_bot Jeff Bezos founded Amazon in Seattle."))
    assert published("MESSAGE_ANALYSED") == [detail]
    analysis = detail["Analysis"]
    assert analysis["Images"] == []
    assert analysis["Language"] == "en"
    assert analysis["TextSentiment"] in {"POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED"}
    assert {e["Type"] for e in analysis["TextEntities"]} >= {"PERSON", "ORGANIZATION"}
    assert analysis["Errors"] == []


def test_mentions_and_links_are_stripped_before_analysis(local_env):
    text = steps.analyse_text(message("@acme_helper_bot https://t.co/abc @other_user"))
    assert text["TextEntities"] == [] and "TextSentiment" not in text  # nothing left to read


def test_language_is_detected_only_when_x_says_und(local_env):
    french = "Bonjour, je voudrais une blague sur les chats, s'il vous plaît."
    assert steps.analyse_text(message(french, language="und"))["Language"] == "fr"
    assert steps.analyse_text(message(french, language="es"))["Language"] == "es"


class CountingAnalyser:
    """The real local analyser, counting which of its models ran."""

    def __init__(self, analyser) -> None:
        self.analyser, self.calls = analyser, []

    def __getattr__(self, name):
        def call(*args):
            self.calls.append(name)
            return getattr(self.analyser, name)(*args)

        return call


def test_only_the_configured_text_capabilities_run_on_the_local_models(local_env, monkeypatch):
    monkeypatch.setenv("TEXT_CAPABILITIES", "sentiment")
    backend.reset()
    counting = CountingAnalyser(backend.text_analyser())
    # Cached like the real factory: backend.reset() clears it at teardown.
    monkeypatch.setattr(backend, "text_analyser", functools.cache(lambda: counting))
    text = steps.analyse_text(message("Jeff Bezos founded Amazon in Seattle.", language="und"))
    assert counting.calls == ["sentiment"]  # no language detection, no spaCy
    assert text["TextEntities"] == [] and text["KeyPhrases"] == []
    assert text["TextSentiment"] in {"POSITIVE", "NEGATIVE", "NEUTRAL", "MIXED"}
    assert text["Errors"] == []


def test_negative_message_is_negative(local_env):
    text = "@acme_helper_bot this is awful, useless and rude. I hate this terrible bot."
    assert steps.analyse_text(message(text))["TextSentiment"] == "NEGATIVE"


def test_images_are_fetched_from_the_mirror_and_known_people_named(mirror_env):
    detail = orchestrator.analyse(
        message("@acme_helper_bot who is this?", images=[ASTRONAUT_URL, HOPPER_URL])
    )
    first, second = detail["Analysis"]["Images"]
    assert [c["Name"] for c in first["Analysis"]["CelebrityFaces"]] == ["Eileen Collins"]
    assert first["Analysis"]["UnrecognizedFaces"] == []
    assert second["Analysis"]["CelebrityFaces"] == []
    assert len(second["Analysis"]["UnrecognizedFaces"]) == 1
    assert "HELLO MAGPIE" in " ".join(
        t["DetectedText"] for t in second["Analysis"]["TextDetections"]
    )
    assert first["Key"] == "media/2026/07/15/100/0.jpg"
    Image.open(io.BytesIO(backend.blob_store().get(first["Key"]))).verify()


def test_rejected_url_is_recorded_and_text_still_analysed(mirror_env):
    detail = orchestrator.analyse(
        message(
            "@acme_helper_bot look",
            images=[
                "http://pbs.twimg.com/media/HaXmP1aWAAEq3Zk.jpg",
                "https://169.254.169.254/latest",
            ],
        )
    )
    reasons = [r["Reason"] for r in detail["Analysis"]["RejectedMedia"]]
    assert reasons == ["scheme", "ip_literal"]
    assert detail["Analysis"]["Images"] == []
    assert detail["Analysis"]["TextSentiment"] is not None


def test_failing_image_analysis_still_gives_message_analysed_with_the_error(mirror_env):
    # A valid image on the wire whose stored copy is then corrupted: the image step fails.
    state = steps.download_media(message("@acme_helper_bot hi", images=[ASTRONAUT_URL]))
    key = state["Media"][0]["Key"]
    backend.blob_store().put(key, b"not an image any more", "image/jpeg")
    text = steps.analyse_text(state["Message"])
    image = orchestrator._image_or_error(state["Media"][0], sleep=lambda s: None)
    detail = steps.publish_analysis(
        {"Message": state["Message"], "Text": text, "Images": [image], "Rejected": []}
    )
    analysis = detail["Analysis"]
    assert analysis["TextSentiment"] is not None
    assert {e["Capability"] for e in analysis["Errors"]} >= {"faces"}
    assert all(e["Image"] == key for e in analysis["Errors"])


def test_whole_failure_publishes_message_analysis_failed(local_env, monkeypatch):
    def broken_download(detail):
        raise ConnectionError("blob store unreachable")

    monkeypatch.setattr(steps, "download_media", broken_download)
    detail = orchestrator.analyse(message("@acme_helper_bot hi"), sleep=lambda s: None)
    assert published("MESSAGE_ANALYSED") == []
    (failed,) = published("MESSAGE_ANALYSIS_FAILED")
    assert failed == detail
    assert "blob store unreachable" in failed["Reason"]


@pytest.mark.slow
def test_runtime_analyses_once_and_alerts_on_negative_messages(mirror_env):
    from chalicelib.alert_sinks import LocalAlertSink
    from chalicelib.events import OutgoingEvent

    negative = message(
        "@acme_helper_bot you are useless, rude and awful. I hate you.", message_id="200"
    )
    bus = backend.event_bus()
    with Runtime(mirror_env.parent / "home") as runtime:
        for _ in range(2):  # EventBridge delivers at least once
            bus.put([OutgoingEvent("magpie.ingress", "MESSAGE_RECEIVED", negative)])
        assert runtime.wait_idle(timeout=120)
    (analysed,) = published("MESSAGE_ANALYSED")
    assert analysed["Analysis"]["TextSentiment"] == "NEGATIVE"
    (alert,) = LocalAlertSink(backend.local_bus_store().path.parent / "alerts.jsonl").read()
    assert alert["Kind"] == "NEGATIVE_MESSAGE"
    assert alert["Author"] == "sample_user_ana"
    assert alert["Link"] == "https://x.com/sample_user_ana/status/200"
    assert alert["NegativeScore"] > 0.5


def test_analysis_failed_raises_an_alert(local_env):
    from magpie.local_targets import raise_alert

    from chalicelib.alert_sinks import LocalAlertSink

    envelope = {
        "id": "e1",
        "detail-type": "MESSAGE_ANALYSIS_FAILED",
        "time": "2026-07-15T14:00:00Z",
        "detail": {
            "MessageId": "9",
            "Author": "a",
            "Text": "t",
            "Reason": "timeout",
            "Twitter": {"TweetId": "9", "UserId": "1"},
        },
    }
    raise_alert(envelope, None)
    raise_alert(envelope, None)  # redelivered: alerted once
    (alert,) = LocalAlertSink(local_env / "alerts.jsonl").read()
    assert (alert["Kind"], alert["Reason"]) == ("ANALYSIS_FAILED", "timeout")


class RendezvousImages:
    """An image adapter whose capabilities only return once all four are being asked at
    the same moment: asked one after another, the first would wait in vain."""

    def __init__(self, waits_on_network: bool, fail: str | None = None) -> None:
        self.waits_on_network = waits_on_network
        self.meeting = threading.Barrier(4, timeout=5)
        self.fail = fail

    def _meet(self, name: str, answer):
        self.meeting.wait()
        if name == self.fail:
            raise ConnectionError(f"{name} failed")
        return answer

    def faces(self, key):
        return self._meet("faces", {"CelebrityFaces": [{"Name": "Grace Hopper"}]})

    def labels(self, key):
        return self._meet("labels", [{"Name": "Bird", "Confidence": 99.0}])

    def text(self, key):
        return self._meet("text", [])

    def moderation(self, key):
        return self._meet("moderation", [])


def use_images(monkeypatch, adapter) -> None:
    monkeypatch.setattr(backend, "image_analyser", functools.cache(lambda: adapter))


def test_a_network_bound_image_adapter_is_asked_every_capability_at_once(local_env, monkeypatch):
    use_images(monkeypatch, RendezvousImages(waits_on_network=True, fail="text"))
    result = steps.analyse_image({"Key": "media/1/0.jpg", "Url": "u"})
    assert result["Analysis"]["Labels"][0]["Name"] == "Bird"
    assert result["Analysis"]["CelebrityFaces"] == [{"Name": "Grace Hopper"}]
    # The failing capability is recorded; the others still answer.
    assert [(e["Capability"], e["Image"]) for e in result["Errors"]] == [("text", "media/1/0.jpg")]


def test_local_models_are_asked_one_capability_after_another(local_env, monkeypatch):
    adapter = RendezvousImages(waits_on_network=False)
    adapter.meeting = threading.Barrier(1)  # each call passes alone
    calls = []
    for name in ("faces", "labels", "text", "moderation"):
        method = getattr(adapter, name)

        def recorded(key, method=method, name=name):
            calls.append((name, threading.current_thread() is threading.main_thread()))
            return method(key)

        setattr(adapter, name, recorded)
    use_images(monkeypatch, adapter)
    result = steps.analyse_image({"Key": "media/1/0.jpg", "Url": "u"})
    assert result["Errors"] == []
    assert calls == [(n, True) for n in ("faces", "labels", "text", "moderation")]
