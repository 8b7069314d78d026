"""The dashboard in a real headless Chromium: a signed webhook goes in, and the page shows
the message, its analysis, its reply and the alert as they happen. The last screenshot is
kept as test-artifacts/dashboard.png."""

from __future__ import annotations

import json

import pytest
from magpie.client import post_signed

from tests.conftest import ROOT, SAMPLES, SECRET
from tests.local.test_serve import env_for, free_port, wait_for_port
from tests.ops.webdriver import Chromium

ARTIFACTS = ROOT / "test-artifacts"
JOKE_ID = "2077393700000000001"  # examples/webhooks/mention-joke.json
NEGATIVE_ID = "2077393700000000002"  # examples/webhooks/mention-negative.json
PHOTOS_ID = "2077393668393734144"  # examples/webhooks/mention-two-photos.json
HOSTILE_TEXT = '@acme_helper_bot <img src=x onerror="document.title=1">hi <b>there</b>'

MESSAGES = """
return [...document.querySelectorAll('#messages .message')].map(m => ({
  id: m.dataset.messageId,
  author: m.querySelector('.author').textContent,
  text: m.querySelector('.text').textContent,
  sentiment: m.dataset.sentiment,
  status: m.querySelector('.reply').dataset.status,
  reply: (m.querySelector('.reply-text') || {}).textContent || null,
  elements: m.querySelector('.text').children.length,
}));
"""
MESSAGE_WITH_STATUS = (
    "const m = document.querySelector(`#messages .message[data-message-id='${arguments[0]}']`);"
    " return m && ['sent', 'dry-run'].includes(m.querySelector('.reply').dataset.status);"
)


@pytest.fixture
def served(tmp_path):
    import subprocess
    import sys

    home, port = tmp_path / "home", free_port()
    env = env_for(home, LOCAL_SENTIMENT="vader")
    env["MAGPIE_MEDIA_MIRROR"] = str(ROOT / "examples" / "media-mirror")  # photos, offline
    magpie = [sys.executable, "-m", "magpie.cli", "--home", str(home)]
    known = ROOT / "examples" / "known-faces" / "eileen-collins.jpg"
    subprocess.run([*magpie, "faces", "add", "Eileen Collins", str(known)], env=env, check=True)
    process = subprocess.Popen(
        [*magpie, "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def hostile_mention() -> bytes:
    payload = json.loads((SAMPLES / "mention-plain.json").read_bytes())
    tweet = payload["tweet_create_events"][0]
    tweet["text"] = HOSTILE_TEXT
    tweet["display_text_range"] = [0, len(HOSTILE_TEXT)]
    tweet["id"], tweet["id_str"] = 2077393799999999999, "2077393799999999999"
    return json.dumps(payload).encode()


@pytest.mark.slow
def test_the_dashboard_shows_a_message_and_its_reply_live(served, tmp_path):
    with Chromium(tmp_path / "chromium-profile") as browser:
        browser.get(served + "/dashboard/")
        live = "return document.getElementById('status').dataset.state === 'live'"
        assert browser.wait_for(live, 30), "the page never reached the API"
        assert browser.script(MESSAGES) == []

        try:
            for body in (
                (SAMPLES / "mention-joke.json").read_bytes(),
                (SAMPLES / "mention-negative.json").read_bytes(),
                hostile_mention(),
                (SAMPLES / "mention-two-photos.json").read_bytes(),
            ):
                status, _ = post_signed(served + "/twitter", body, SECRET)
                assert status == 200
            for message_id in (JOKE_ID, NEGATIVE_ID, "2077393799999999999", PHOTOS_ID):
                assert browser.wait_for(MESSAGE_WITH_STATUS, 120, message_id), message_id
            thumbnails_loaded = (
                "const imgs = [...document.querySelectorAll("
                "`#messages .message[data-message-id='${arguments[0]}'] img.annotated`)];"
                " return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0)"
                " && imgs.map(i => decodeURIComponent(i.src));"
            )
            annotated = browser.wait_for(thumbnails_loaded, 30, PHOTOS_ID)
        finally:
            browser.screenshot(ARTIFACTS / "dashboard.png")

        messages = {m["id"]: m for m in browser.script(MESSAGES)}
        joke = messages[JOKE_ID]
        assert joke["author"] == "@sample_user_ana"
        assert joke["text"] == "@acme_helper_bot tell me a joke please"
        assert joke["status"] == "dry-run" and joke["reply"]  # the joke, written to the outbox
        assert messages[NEGATIVE_ID]["sentiment"] == "NEGATIVE"

        photos = messages[PHOTOS_ID]
        assert photos["reply"] == "I recognised: Eileen Collins"
        assert annotated == [
            served + "/api/media?key=annotated/2026/07/15/2077393668393734144/0.jpg"
        ]
        people = browser.script(
            "return document.querySelector(`.message[data-message-id='${arguments[0]}'] .people`)"
            ".textContent",
            PHOTOS_ID,
        )
        assert people == "Recognised: Eileen Collins"

        hostile = messages["2077393799999999999"]
        assert hostile["text"] == HOSTILE_TEXT and hostile["elements"] == 0  # text, not HTML
        assert browser.script("return document.title") == "Magpie — local dashboard"

        alerts = browser.wait_for(
            "return [...document.querySelectorAll('#alerts li')].map(a => a.dataset.kind)", 30
        )
        assert "NEGATIVE_MESSAGE" in alerts
        feed = browser.script(
            "return [...document.querySelectorAll('#feed li')].map(li => li.dataset.type)"
        )
        assert {"MESSAGE_RECEIVED", "MESSAGE_ANALYSED", "SEND_TWEET", "TWEET_SENT"} <= set(feed)
        bars = browser.script(
            "return [...document.querySelectorAll('#chart-types rect')].map(r => r.dataset.series)"
        )
        assert "TWEET_SENT" in bars
        sentiment_bars = browser.script(
            "return [...document.querySelectorAll('#chart-sentiment rect')]"
            ".map(r => r.dataset.series)"
        )
        assert "NEGATIVE" in sentiment_bars
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
