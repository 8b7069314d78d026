"""The dashboard in a real headless Chromium: signed webhooks go in (and refused ones), and
the page shows each message, its analysis, photos, reply and alert as they happen, with the
health strip, filters and local times. The last screenshot is kept as
test-artifacts/dashboard.png (docs/dashboard.png is one of them)."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from magpie.client import post_signed

from chalicelib.responders.bot_definition import load_bot_definition
from tests.conftest import ROOT, SAMPLES, SECRET
from tests.local.test_serve import env_for, free_port, wait_for_port
from tests.ops.webdriver import Chromium

ARTIFACTS = ROOT / "test-artifacts"
JOKE_ID = "2077393700000000001"  # examples/webhooks/mention-joke.json
DM_PHOTO_ID = "2077394882506272768"  # examples/webhooks/direct-message-with-photo.json
ZONE, OFFSET = "Asia/Tokyo", "+09:00"  # no daylight saving: the label is always the same
TYPE_COLOURS = {"MESSAGE_RECEIVED": "#3f6fd8", "MESSAGE_ANALYSED": "#1a9aa8",
                "SEND_TWEET": "#8e5bd0", "TWEET_SENT": "#2e9d5b"}  # fmt: skip
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
  time: m.querySelector('.meta .time').textContent,
  utc: m.querySelector('.meta .time').title,
  link: (m.querySelector('a.link') || {}).href || null,
  entities: (m.querySelector('.entities') || {}).textContent || null,
  received: [...m.querySelectorAll('img.received')].map(i => i.complete && i.naturalWidth > 0),
  refused: [...m.querySelectorAll('.rejected li')].map(li => li.dataset.reason),
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
    env = env_for(home)  # the default local sentiment (e5), which leaned "tell me a joke" negative
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


def text_of(browser, selector: str) -> str:
    return browser.script(f"return document.querySelector({selector!r}).textContent")


@pytest.mark.slow
def test_the_dashboard_shows_a_message_and_its_reply_live(served, tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", ZONE)  # Chromium shows times in the zone it runs in
    with Chromium(tmp_path / "chromium-profile") as browser:
        browser.get(served + "/dashboard/")
        connected = "return document.getElementById('status').dataset.state === 'connected'"
        assert browser.wait_for(connected, 30), "the page never reached the API"
        assert browser.script(MESSAGES) == []
        assert text_of(browser, "#zone") == f"times in {ZONE} (UTC{OFFSET})"
        assert text_of(browser, "#mode") == "dry run: replies go to the outbox"
        assert "live" not in text_of(browser, "#status")  # not to be read as `serve --live`

        try:
            for body in (
                (SAMPLES / "mention-joke.json").read_bytes(),
                (SAMPLES / "mention-negative.json").read_bytes(),
                hostile_mention(),
                (SAMPLES / "mention-two-photos.json").read_bytes(),
                (SAMPLES / "direct-message-with-photo.json").read_bytes(),
            ):
                status, _ = post_signed(served + "/twitter", body, SECRET)
                assert status == 200
            refused, _ = post_signed(served + "/twitter", b'{"for_user_id": "1"}', "wrong")
            assert refused == 401
            for message_id in (JOKE_ID, NEGATIVE_ID, "2077393799999999999", PHOTOS_ID, DM_PHOTO_ID):
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
        assert joke["sentiment"] != "NEGATIVE"  # a request for a joke is no complaint
        assert joke["link"] == f"https://x.com/sample_user_ana/status/{JOKE_ID}"
        utc = datetime.fromisoformat(joke["utc"].replace("Z", "+00:00"))
        assert joke["time"].endswith(utc.astimezone(ZoneInfo(ZONE)).strftime("%H:%M:%S"))
        negative = messages[NEGATIVE_ID]
        assert negative["sentiment"] == "NEGATIVE"
        assert negative["reply"] == load_bot_definition().replies["negative"]

        dm = messages[DM_PHOTO_ID]
        assert dm["link"] is None and dm["refused"] == ["host_not_allowed"]
        assert dm["reply"].startswith("Sorry, I could not open the photo you sent")

        photos = messages[PHOTOS_ID]
        assert photos["reply"] == "I recognised: Eileen Collins"
        assert photos["received"] == [True, True]  # both photos, as thumbnails
        assert photos["entities"] is None  # "two" (CARDINAL) is not worth a line
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
        fills = browser.script(
            "return Object.fromEntries([...document.querySelectorAll('#chart-types rect')]"
            ".map(r => [r.dataset.series, r.getAttribute('fill')]))"
        )
        assert {t: fills[t] for t in TYPE_COLOURS} == TYPE_COLOURS  # fixed, not first-seen

        webhook = browser.wait_for(
            "const s = document.querySelector('#webhook-statuses [data-status=\"401\"] b');"
            " return s && s.textContent",
            10,
        )
        assert webhook == "1"
        statuses = browser.script(
            "return [...document.querySelectorAll('#webhook-statuses .chip')]"
            ".map(c => c.dataset.status)"
        )
        assert statuses == ["200", "401"]  # the page's own requests are not webhook calls
        # The counts are the server's since it started (a restart begins them again).
        assert text_of(browser, "#webhook-since").startswith("since the server started (")
        assert text_of(browser, "#dead-count") == "0"
        outcomes = browser.script(
            "return Object.fromEntries([...document.querySelectorAll('#reply-outcomes .chip')]"
            ".map(c => [c.dataset.status, c.querySelector('b').textContent]))"
        )
        assert outcomes == {"dry-run": "5"}
        assert text_of(browser, "#latency-mean").endswith(" s")

        browser.script(
            "const kind = document.getElementById('kind'); kind.value = 'DIRECT_MESSAGE';"
        )
        only_dm = (
            "const ids = [...document.querySelectorAll('#messages .message')]"
            ".map(m => m.dataset.messageId); return ids.length === 1 && ids[0]"
        )
        assert browser.wait_for(only_dm, 10) == DM_PHOTO_ID
        browser.script("document.getElementById('kind').value = '';"
                       "document.getElementById('author').value = 'nobody-at-all';")  # fmt: skip
        assert browser.wait_for(
            "return document.querySelectorAll('#messages .message').length === 0", 10
        )
        browser.script("document.getElementById('author').value = '';")
        assert browser.wait_for(
            "return document.querySelectorAll('#messages .message').length === 5", 10
        )
        shown = "return document.getElementById('custom-range').offsetParent !== null"
        assert browser.script(shown) is False  # from/to only with the custom range
        # A custom range, typed in local time: an hour that ended before the messages came.
        browser.script(
            "document.getElementById('range').value = 'custom';"
            "const t = new Date(Date.now() - 2 * 3600e3);"
            "const local = (d) => new Date(d - d.getTimezoneOffset() * 60e3)"
            "  .toISOString().slice(0, 19);"
            "document.getElementById('from').value = local(t);"
            "document.getElementById('to').value = local(new Date(t.getTime() + 3600e3));"
        )
        assert browser.wait_for(
            "return document.querySelectorAll('#messages .message').length === 0", 10
        )
        assert browser.script(shown) is True
        browser.script("document.getElementById('range').value = '1h';")
        assert browser.wait_for(
            "return document.querySelectorAll('#messages .message').length === 5", 10
        )
        sentiment_bars = browser.script(
            "return [...document.querySelectorAll('#chart-sentiment rect')]"
            ".map(r => r.dataset.series)"
        )
        assert "NEGATIVE" in sentiment_bars
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
