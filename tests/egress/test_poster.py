import io
import json
import random

import pytest
import requests
import responses

from chalicelib.egress.content import MAX_IMAGE_BYTES, ImageTooLarge, fit_image
from chalicelib.egress.delivery import backoff_delay, post_with_retries
from chalicelib.egress.poster import XPoster
from chalicelib.egress.text_fit import ELLIPSIS, weighted_length
from chalicelib.egress.x_client import (
    MEDIA_UPLOAD_URL,
    FinalXError,
    RateLimited,
    TransientXError,
    Unauthorized,
    XClient,
    XCredentials,
)
from chalicelib.ports import PostResult, ReplyRequest
from tests.egress.x_openapi import assert_documented, multipart_fields

CREDS = XCredentials("ck", "cs", "at", "ats")
TWEETS_URL = "https://api.twitter.com/2/tweets"
DM_URL = "https://api.twitter.com/2/dm_conversations/with/42/messages"
NOW = 1_700_000_000.0


def mention(text="hi", images=()):
    return ReplyRequest("MENTION", text, "42", "1234", list(images))


def dm(text="hi", images=()):
    return ReplyRequest("DIRECT_MESSAGE", text, "42", None, list(images))


class FakeClock:
    def __init__(self, now=NOW):
        self.now = now
        self.sleeps = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedPoster:
    """A poster whose successive calls raise or return the scripted outcomes."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.calls = 0

    def post(self, request):
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


OK = PostResult(sent_id="99", media_ids=[], dry_run=False)


def retry(poster, clock, **kwargs):
    return post_with_retries(poster, mention(), sleep=clock.sleep, clock=clock.time, **kwargs)


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


# --- ReplyRequest ----------------------------------------------------------------------


def test_reply_request_repr_never_shows_image_bytes():
    request = mention(images=[(b"SECRET-BYTES", "image/png")])
    assert "SECRET-BYTES" not in repr(request)


@pytest.mark.parametrize(
    "args",
    [
        ("TWEET", "hi", "42", "1"),
        ("MENTION", "hi", "42", None),
        ("DIRECT_MESSAGE", "", "42", None),
    ],
)
def test_invalid_reply_requests_are_refused(args):
    with pytest.raises(ValueError):
        ReplyRequest(*args)


# --- XPoster against X (tweepy + responses) -------------------------------------------


def test_mention_uploads_images_then_replies_with_their_ids(mocked):
    mocked.post(MEDIA_UPLOAD_URL, json={"data": {"id": "71", "media_key": "3_71"}})
    mocked.post(MEDIA_UPLOAD_URL, json={"data": {"id": "72", "media_key": "3_72"}})
    mocked.post(TWEETS_URL, status=201, json={"data": {"id": "777", "text": "hi"}})
    request = mention(images=[(b"one", "image/jpeg"), (b"two", "image/png")])

    result = XPoster(XClient(CREDS)).post(request)

    assert result == PostResult(sent_id="777", media_ids=["71", "72"], dry_run=False)
    upload_1, upload_2, tweet = mocked.calls
    assert b"one" in upload_1.request.body and b"tweet_image" in upload_1.request.body
    assert b"two" in upload_2.request.body
    assert json.loads(tweet.request.body) == {
        "text": "hi",
        "reply": {"in_reply_to_tweet_id": "1234"},
        "media": {"media_ids": ["71", "72"]},
    }
    assert [assert_documented(call.request) for call in mocked.calls] == [
        "POST /2/media/upload",
        "POST /2/media/upload",
        "POST /2/tweets",
    ]


def test_a_mention_reply_reaches_only_its_author(mocked):
    mocked.post(TWEETS_URL, status=201, json={"data": {"id": "777", "text": "hi"}})
    request = ReplyRequest(
        "MENTION", "hi", "42", "1234", exclude_reply_user_ids=("2244994945", "42", "783214")
    )

    XPoster(XClient(CREDS)).post(request)

    body = json.loads(mocked.calls[0].request.body)
    # everyone else the message tagged is left out; the author (42) never is
    assert body["reply"] == {
        "in_reply_to_tweet_id": "1234",
        "exclude_reply_user_ids": ["2244994945", "783214"],
    }
    assert_documented(mocked.calls[0].request)


def test_an_image_only_dm_is_documented(mocked):
    mocked.post(MEDIA_UPLOAD_URL, json={"data": {"id": "880", "media_key": "3_880"}})
    mocked.post(DM_URL, status=201, json={"data": {"dm_conversation_id": "c", "dm_event_id": "1"}})

    XPoster(XClient(CREDS)).post(dm(text="", images=[(b"jpeg", "image/jpeg")]))

    assert json.loads(mocked.calls[1].request.body) == {"attachments": [{"media_id": "880"}]}
    assert [assert_documented(call.request) for call in mocked.calls] == [
        "POST /2/media/upload",
        "POST /2/dm_conversations/with/{participant_id}/messages",
    ]


def noise_png(width: int, height: int, seed: int = 7) -> bytes:
    """A PNG that does not compress: random pixels (seeded, so every run is the same)."""
    from PIL import Image

    pixels = random.Random(seed).randbytes(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, "PNG")
    return out.getvalue()


def test_an_image_over_5_mb_is_reencoded_under_the_limit_before_upload(mocked):
    from PIL import Image

    big = noise_png(1700, 1100)
    assert len(big) > MAX_IMAGE_BYTES
    mocked.post(MEDIA_UPLOAD_URL, json={"data": {"id": "71", "media_key": "3_71"}})
    mocked.post(TWEETS_URL, status=201, json={"data": {"id": "777", "text": "hi"}})

    XPoster(XClient(CREDS)).post(mention(images=[(big, "image/png")]))

    _, content_type, payload = multipart_fields(mocked.calls[0].request)["media"]
    assert len(payload) <= MAX_IMAGE_BYTES
    assert content_type == "image/jpeg"
    with Image.open(io.BytesIO(payload)) as sent:
        assert sent.format == "JPEG" and sent.width >= 1000


def test_an_image_within_the_limit_is_sent_untouched():
    small = noise_png(64, 64)

    assert fit_image(small, "image/png") == (small, "image/png")


def test_an_image_that_cannot_be_brought_under_the_limit_fails_for_good(mocked):
    big = noise_png(400, 300)

    with pytest.raises(ImageTooLarge) as raised:
        fit_image(big, "image/png", limit=200)

    assert raised.value.reason == "image_too_large" and isinstance(raised.value, FinalXError)


def test_an_oversized_file_that_is_not_an_image_fails_before_any_upload(mocked):
    not_an_image = b"\x89PNG\r\n\x1a\n" + bytes(MAX_IMAGE_BYTES)

    with pytest.raises(ImageTooLarge, match="cannot be re-encoded"):
        XPoster(XClient(CREDS)).post(mention(images=[(not_an_image, "image/png")]))

    assert len(mocked.calls) == 0


def test_transparency_is_flattened_when_reencoding():
    from PIL import Image

    rng = random.Random(3)
    image = Image.frombytes("RGBA", (300, 200), rng.randbytes(300 * 200 * 4))
    out = io.BytesIO()
    image.save(out, "PNG")

    data, media_type = fit_image(out.getvalue(), "image/png", limit=len(out.getvalue()) - 1)

    assert media_type == "image/jpeg"
    with Image.open(io.BytesIO(data)) as sent:
        assert (sent.format, sent.mode, sent.size) == ("JPEG", "RGB", (300, 200))


def test_mention_text_is_fitted_to_280_weighted_characters(mocked):
    mocked.post(TWEETS_URL, status=201, json={"data": {"id": "1", "text": "x"}})

    XPoster(XClient(CREDS)).post(mention(text="joke " * 100))

    sent = json.loads(mocked.calls[0].request.body)["text"]
    assert sent.endswith(ELLIPSIS) and weighted_length(sent) <= 280
    assert ("joke " * 100).startswith(sent[:-1])


def test_a_mention_carries_at_most_four_images(mocked):
    for i in range(4):
        mocked.post(MEDIA_UPLOAD_URL, json={"data": {"id": f"7{i}"}})
    mocked.post(TWEETS_URL, status=201, json={"data": {"id": "1", "text": "x"}})
    images = [(bytes([i]) * 3, "image/png") for i in range(6)]

    result = XPoster(XClient(CREDS)).post(mention(images=images))

    assert result.media_ids == ["70", "71", "72", "73"]
    assert len(mocked.calls) == 5


def test_a_dm_carries_one_image_uploaded_for_dms(mocked):
    mocked.post(MEDIA_UPLOAD_URL, json={"data": {"id": "881"}})
    mocked.post(
        DM_URL, status=201, json={"data": {"dm_conversation_id": "c", "dm_event_id": "ev1"}}
    )
    request = dm(text="long " * 100, images=[(b"first", "image/jpeg"), (b"second", "image/jpeg")])

    result = XPoster(XClient(CREDS)).post(request)

    assert result == PostResult(sent_id="ev1", media_ids=["881"], dry_run=False)
    upload, message = mocked.calls
    assert b"first" in upload.request.body and b"second" not in upload.request.body
    assert b"dm_image" in upload.request.body
    # DMs allow 10,000 characters: the text is not cut to a post's length
    assert json.loads(message.request.body) == {
        "text": "long " * 100,
        "attachments": [{"media_id": "881"}],
    }
    for call in mocked.calls:
        assert_documented(call.request)


def test_a_failed_upload_stops_before_replying(mocked):
    mocked.post(MEDIA_UPLOAD_URL, status=403, json={"title": "Forbidden", "detail": "nope"})

    with pytest.raises(FinalXError):
        XPoster(XClient(CREDS)).post(mention(images=[(b"x", "image/png")]))

    assert len(mocked.calls) == 1


def test_429_then_201_waits_until_the_reset(mocked):
    clock = FakeClock()
    mocked.post(
        TWEETS_URL,
        status=429,
        json={"title": "Too Many Requests"},
        headers={"x-rate-limit-reset": str(int(NOW) + 30)},
    )
    mocked.post(TWEETS_URL, status=201, json={"data": {"id": "555", "text": "hi"}})

    result = retry(XPoster(XClient(CREDS)), clock)

    assert result.sent_id == "555"
    assert clock.sleeps == [31.0]  # to the reset second, plus one
    assert len(mocked.calls) == 2


def test_500_twice_then_success_backs_off_exponentially(mocked):
    clock = FakeClock()
    mocked.post(TWEETS_URL, status=500, json={"title": "Internal Server Error"})
    mocked.post(TWEETS_URL, status=503, body="upstream down")
    mocked.post(TWEETS_URL, status=201, json={"data": {"id": "556", "text": "hi"}})

    result = retry(XPoster(XClient(CREDS)), clock, base_delay=2.0)

    assert result.sent_id == "556"
    first, second = clock.sleeps
    assert 1.0 <= first <= 2.0
    assert 2.0 <= second <= 4.0


def test_a_duplicate_403_is_not_retried(mocked):
    clock = FakeClock()
    mocked.post(
        TWEETS_URL,
        status=403,
        json={"detail": "You are not allowed to create a Tweet with duplicate content."},
    )

    with pytest.raises(FinalXError) as raised:
        retry(XPoster(XClient(CREDS)), clock)

    assert raised.value.reason == "duplicate_text"
    assert clock.sleeps == []
    assert len(mocked.calls) == 1


# --- post_with_retries policy ----------------------------------------------------------


def test_a_reset_beyond_max_wait_raises_rate_limited_at_once():
    clock = FakeClock()
    limited = RateLimited("429", reset_at=NOW + 901)
    poster = ScriptedPoster(limited, OK)

    with pytest.raises(RateLimited) as raised:
        retry(poster, clock, max_wait_s=900)

    assert raised.value is limited and raised.value.reset_at == NOW + 901
    assert clock.sleeps == [] and poster.calls == 1


def test_a_reset_in_the_past_waits_only_the_margin():
    clock = FakeClock()
    poster = ScriptedPoster(RateLimited("429", reset_at=NOW - 5), OK)

    assert retry(poster, clock) is OK
    assert clock.sleeps == [1.0]


def test_a_429_without_reset_backs_off():
    clock = FakeClock()
    poster = ScriptedPoster(RateLimited("429", reset_at=None), OK)

    assert retry(poster, clock, base_delay=4.0) is OK
    (wait,) = clock.sleeps
    assert 2.0 <= wait <= 4.0


@pytest.mark.parametrize(
    "error",
    [
        FinalXError("403", reason="not_summoned", status_code=403),
        Unauthorized("401", status_code=401),
        ValueError("a bug, not X"),
    ],
)
def test_final_errors_are_raised_without_retry(error):
    clock = FakeClock()
    poster = ScriptedPoster(error, OK)

    with pytest.raises(type(error)) as raised:
        retry(poster, clock)

    assert raised.value is error
    assert poster.calls == 1 and clock.sleeps == []


def test_transient_errors_give_up_after_max_attempts():
    clock = FakeClock()
    errors = [TransientXError(f"boom {i}", status_code=500) for i in range(3)]
    poster = ScriptedPoster(*errors)

    with pytest.raises(TransientXError) as raised:
        retry(poster, clock, max_attempts=3)

    assert raised.value is errors[-1]
    assert poster.calls == 3 and len(clock.sleeps) == 2


def test_timeouts_are_retried():
    clock = FakeClock()
    poster = ScriptedPoster(TransientXError("X request timed out: ReadTimeout"), OK)

    assert retry(poster, clock) is OK
    assert poster.calls == 2


def test_rate_limit_on_the_last_attempt_is_raised_for_parking():
    clock = FakeClock()
    poster = ScriptedPoster(TransientXError("500"), RateLimited("429", reset_at=NOW + 10))

    with pytest.raises(RateLimited):
        retry(poster, clock, max_attempts=2)

    assert poster.calls == 2 and len(clock.sleeps) == 1


def test_backoff_is_capped_by_max_wait():
    for attempt in range(1, 12):
        delay = backoff_delay(attempt, base_delay=1.0, max_wait_s=60)
        ceiling = min(60, 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling


def test_max_attempts_must_be_positive():
    with pytest.raises(ValueError):
        post_with_retries(ScriptedPoster(OK), mention(), max_attempts=0)


def test_a_connection_error_through_x_is_retried(mocked):
    clock = FakeClock()
    mocked.post(TWEETS_URL, body=requests.exceptions.ConnectionError("reset"))
    mocked.post(TWEETS_URL, status=201, json={"data": {"id": "8", "text": "hi"}})

    assert retry(XPoster(XClient(CREDS)), clock).sent_id == "8"
    assert len(clock.sleeps) == 1
