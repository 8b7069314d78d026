"""send_reply against X's current answers and limits (X API reference, 2026): each outcome
through the whole egress path, each request checked against the reference."""

from __future__ import annotations

import io
import json
import random

from chalicelib import backend
from chalicelib.egress.content import MAX_IMAGE_BYTES
from chalicelib.egress.x_client import MEDIA_UPLOAD_URL
from chalicelib.events import ReplySkipped, TweetFailed, TweetSent
from tests.egress import test_send
from tests.egress.test_send import DM_URL, POSTED, TWEETS_URL, command, outcomes, send
from tests.egress.x_openapi import assert_documented, multipart_fields

# The same live-X fixtures as test_send: `x` (responses) and `clock`.
x = test_send.x
clock = test_send.clock

NOT_SUMMONED = {
    "title": "Forbidden",
    "type": "https://api.x.com/2/problems/not-authorized-for-resource",
    "detail": "You can only reply to or quote posts where you are mentioned or are the author.",
    "resource_type": "tweet",
    "status": 403,
}


def noise_png(width: int, height: int) -> bytes:
    from PIL import Image

    pixels = random.Random(11).randbytes(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, "PNG")
    return out.getvalue()


def test_xs_current_not_summoned_answer_is_skipped_not_failed(x, clock):
    x.post(TWEETS_URL, status=403, json=NOT_SUMMONED)

    outcome = send(command(), clock)

    assert isinstance(outcome, ReplySkipped) and outcome.Reason == "not_summoned"
    assert [(kind, detail["Reason"]) for _, kind, detail in outcomes()] == [
        ("REPLY_SKIPPED", "not_summoned")
    ]
    assert len(x.calls) == 1  # final: never retried


def test_a_non_numeric_rate_limit_reset_backs_off_then_posts(x, clock):
    x.post(
        TWEETS_URL,
        status=429,
        json={"title": "Too Many Requests"},
        headers={"x-rate-limit-reset": "Tue, 02 Dec 2026 08:00:00 GMT"},
    )
    x.post(TWEETS_URL, **POSTED)

    outcome = send(command(), clock)

    assert isinstance(outcome, TweetSent)
    assert len(clock.sleeps) == 1 and clock.sleeps[0] > 0  # backed off: no reset to wait for


def test_an_image_only_direct_message_sends_no_empty_text(x, clock):
    backend.blob_store().put("annotated/d/0.png", noise_png(32, 32), "image/png")
    x.post(MEDIA_UPLOAD_URL, status=200, json={"data": {"id": "801", "media_key": "3_801"}})
    x.post(DM_URL, status=201, json={"data": {"dm_conversation_id": "c", "dm_event_id": "9"}})

    outcome = send(
        command(
            Kind="DIRECT_MESSAGE", ReplyToTweetId=None, Text="", ImageKeys=["annotated/d/0.png"]
        ),
        clock,
    )

    assert isinstance(outcome, TweetSent)
    assert json.loads(x.calls[1].request.body) == {"attachments": [{"media_id": "801"}]}
    assert [assert_documented(c.request) for c in x.calls] == [
        "POST /2/media/upload",
        "POST /2/dm_conversations/with/{participant_id}/messages",
    ]


def test_an_annotated_image_over_5_mb_is_uploaded_under_the_limit(x, clock):
    big = noise_png(1700, 1100)
    assert len(big) > MAX_IMAGE_BYTES
    backend.blob_store().put("annotated/e/0.png", big, "image/png")
    x.post(MEDIA_UPLOAD_URL, status=200, json={"data": {"id": "802", "media_key": "3_802"}})
    x.post(TWEETS_URL, **POSTED)

    outcome = send(command(ImageKeys=["annotated/e/0.png"]), clock)

    assert isinstance(outcome, TweetSent) and outcome.MediaIds == ["802"]
    _, content_type, payload = multipart_fields(x.calls[0].request)["media"]
    assert len(payload) <= MAX_IMAGE_BYTES and content_type == "image/jpeg"
    assert assert_documented(x.calls[0].request) == "POST /2/media/upload"


def test_an_image_that_cannot_be_brought_under_5_mb_fails_for_good(x, clock):
    # Sniffed as a PNG, but not one Pillow can decode: nothing is uploaded or posted.
    broken = b"\x89PNG\r\n\x1a\n" + bytes(MAX_IMAGE_BYTES)
    backend.blob_store().put("annotated/f/0.png", broken, "image/png")

    outcome = send(command(ImageKeys=["annotated/f/0.png"]), clock)

    assert isinstance(outcome, TweetFailed) and outcome.Reason == "image_too_large"
    assert not x.calls
    assert [kind for _, kind, _ in outcomes()] == ["TWEET_FAILED"]
