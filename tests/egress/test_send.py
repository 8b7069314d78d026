"""send_reply on the local backend, against X through `responses` (MAGPIE_LIVE) and against
the dry-run outbox: one reply per message whatever the redelivery, and every X answer
mapped to its outcome.

Outcomes of bad input, as each test states: answered (TWEET_SENT), skipped with a reason
(REPLY_SKIPPED), failed for good (TWEET_FAILED), or raised so the bus retries and parks it.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import time
from datetime import UTC, datetime

import pytest
import requests
import responses

from chalicelib import backend
from chalicelib.blobs import BlobNotFound
from chalicelib.egress.send import send_reply
from chalicelib.egress.x_client import MEDIA_UPLOAD_URL, RateLimited, TransientXError
from chalicelib.events import ContractError, ReplySkipped, TweetFailed, TweetSent, utc_now_iso
from tests.analysis.images import astronaut, jpeg_bytes, png_bytes
from tests.conftest import BOT_ID, ROOT
from tests.egress.x_openapi import assert_documented

FIXTURE = json.loads((ROOT / "tests/fixtures/events/SEND_TWEET.json").read_text())
AUTHOR = FIXTURE["ReplyToUserId"]
TWEET = FIXTURE["ReplyToTweetId"]
TWEETS_URL = "https://api.twitter.com/2/tweets"
DM_URL = f"https://api.twitter.com/2/dm_conversations/with/{AUTHOR}/messages"
DM_EVENTS_URL = f"https://api.twitter.com/2/dm_conversations/with/{AUTHOR}/dm_events"
TIMELINE_URL = f"https://api.twitter.com/2/users/{BOT_ID}/tweets"
POSTED = {"status": 201, "json": {"data": {"id": "1900000000000000001", "text": "x"}}}


class FakeClock:
    """Real time to start with; sleeping only moves it on (the tests never really wait)."""

    def __init__(self) -> None:
        self.now = time.time()
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def x(local_env, monkeypatch):
    """Live replies on the local backend, to an X that `responses` plays."""
    monkeypatch.setenv("MAGPIE_LIVE", "true")
    for name in ("TWITTER_API_KEY", "TWITTER_ACCESS_TOKEN", "TWITTER_ACCESS_TOKEN_SECRET"):
        monkeypatch.setenv(name, f"test-{name.lower()}")
    backend.reset()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        yield mocked


def command(**changes) -> dict:
    base = {k: v for k, v in FIXTURE.items() if k != "ImageKey"}
    detail = {**base, "ImageKeys": [], "ReceivedAt": utc_now_iso(), **changes}
    return {k: v for k, v in detail.items() if v is not None}


def send(detail: dict, clock: FakeClock, **kwargs):
    return send_reply(detail, sleep=clock.sleep, clock=clock.time, **kwargs)


def outcomes() -> list[tuple[str, str, dict]]:
    envelopes = [e for _, e in backend.local_bus_store().events_since(0)]
    return [(e["source"], e["detail-type"], e["detail"]) for e in envelopes]


def alerts() -> list[dict]:
    return backend.alert_sink().read()


def multipart_parts(request) -> list:
    raw = b"Content-Type: " + request.headers["Content-Type"].encode() + b"\r\n\r\n" + request.body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    return list(message.iter_parts())


def multipart(request) -> dict[str, bytes]:
    return {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
        for part in multipart_parts(request)
    }


def media_part_type(request) -> str:
    """The media type an upload declares: the Content-Type of its `media` part."""
    (media,) = [
        part
        for part in multipart_parts(request)
        if part.get_param("name", header="content-disposition") == "media"
    ]
    return media.get_content_type()


# --- exactly once ----------------------------------------------------------------------


def test_a_redelivered_send_tweet_posts_once(x, clock):
    x.post(TWEETS_URL, **POSTED)
    detail = command(Text="Why did the robot cross the road?")

    first = send(detail, clock)
    again = [send(detail, clock) for _ in range(3)]

    assert len(x.calls) == 1
    assert json.loads(x.calls[0].request.body) == {
        "text": "Why did the robot cross the road?",
        "reply": {"in_reply_to_tweet_id": TWEET},
    }
    assert isinstance(first, TweetSent)
    assert first.SentId == "1900000000000000001"
    assert again == [first] * 3
    ((source, detail_type, published),) = outcomes()
    assert (source, detail_type) == ("magpie.egress", "TWEET_SENT")
    assert published == first.to_detail()
    assert published["MessageId"] == FIXTURE["MessageId"]
    assert published["DryRun"] is False


def test_a_second_command_for_the_same_message_is_not_posted(x, clock):
    # An archive replay of MESSAGE_ANALYSED makes a new SEND_TWEET (another joke): still one reply.
    x.post(TWEETS_URL, **POSTED)
    send(command(Text="joke one"), clock)
    replayed = send(command(Text="joke two"), clock)

    assert len(x.calls) == 1
    assert replayed.Text == "joke one"
    assert [o[1] for o in outcomes()] == ["TWEET_SENT"]


def test_the_reply_leaves_out_everyone_else_the_mention_tagged(x, clock):
    x.post(TWEETS_URL, **POSTED)
    send(command(ExcludeReplyUserIds=["3333", "4444"]), clock)

    (call,) = x.calls
    assert json.loads(call.request.body)["reply"] == {
        "in_reply_to_tweet_id": TWEET,
        "exclude_reply_user_ids": ["3333", "4444"],
    }


def test_a_direct_message_and_a_mention_with_the_same_id_are_different_messages(x, clock):
    x.post(TWEETS_URL, **POSTED)
    x.post(DM_URL, status=201, json={"data": {"dm_conversation_id": "c", "dm_event_id": "e1"}})

    send(command(), clock)
    dm = send(command(Kind="DIRECT_MESSAGE", ReplyToTweetId=None), clock)

    assert dm.SentId == "e1"
    assert len(x.calls) == 2


def test_long_text_is_cut_to_fit_and_the_sent_text_is_recorded(x, clock):
    x.post(TWEETS_URL, **POSTED)
    sent = send(command(Text="word " * 100), clock)

    body = json.loads(x.calls[0].request.body)
    assert body["text"] == sent.Text
    assert len(sent.Text) <= 280
    assert sent.Text.endswith("…")


# --- images ----------------------------------------------------------------------------


def test_images_are_read_from_the_blob_store_uploaded_then_attached(x, clock):
    photos = {
        "annotated/a/0.jpg": jpeg_bytes(astronaut()),
        "annotated/a/1.png": png_bytes(astronaut()),
    }
    for key, data in photos.items():
        backend.blob_store().put(key, data, "application/octet-stream")
    x.post(MEDIA_UPLOAD_URL, status=200, json={"data": {"id": "701"}})
    x.post(MEDIA_UPLOAD_URL, status=200, json={"data": {"id": "702"}})
    x.post(TWEETS_URL, **POSTED)

    sent = send(command(ImageKeys=list(photos), ImageKey="annotated/a/0.jpg"), clock)

    uploads = [multipart(c.request) for c in x.calls[:2]]
    assert [u["media"] for u in uploads] == list(photos.values())
    assert [media_part_type(c.request) for c in x.calls[:2]] == ["image/jpeg", "image/png"]
    assert {u["media_category"] for u in uploads} == {b"tweet_image"}
    assert json.loads(x.calls[2].request.body)["media"] == {"media_ids": ["701", "702"]}
    assert sent.MediaIds == ["701", "702"]


def test_a_direct_message_carries_one_image_as_dm_image(x, clock):
    backend.blob_store().put("annotated/b/0.jpg", jpeg_bytes(astronaut()), "image/jpeg")
    backend.blob_store().put("annotated/b/1.jpg", jpeg_bytes(astronaut()), "image/jpeg")
    x.post(MEDIA_UPLOAD_URL, status=200, json={"data": {"id": "801"}})
    x.post(DM_URL, status=201, json={"data": {"dm_conversation_id": "c", "dm_event_id": "e9"}})

    sent = send(
        command(
            Kind="DIRECT_MESSAGE",
            ReplyToTweetId=None,
            ImageKeys=["annotated/b/0.jpg", "annotated/b/1.jpg"],
        ),
        clock,
    )

    assert multipart(x.calls[0].request)["media_category"] == b"dm_image"
    assert json.loads(x.calls[1].request.body)["attachments"] == [{"media_id": "801"}]
    assert sent.SentId == "e9"


def test_a_missing_image_raises_for_the_bus_and_gives_the_slot_back(x, clock, monkeypatch):
    # Parked for replay after the bus's retries; nothing is posted or published.
    monkeypatch.setenv("REPLIES_PER_AUTHOR_PER_HOUR", "1")
    backend.reset()
    with pytest.raises(BlobNotFound):
        send(command(ImageKeys=["annotated/nowhere/0.jpg"]), clock)
    assert outcomes() == []
    x.post(TWEETS_URL, **POSTED)
    assert isinstance(send(command(), clock), TweetSent)  # the author's one slot is still free


def test_a_blob_that_is_not_an_image_raises(x, clock):
    backend.blob_store().put("annotated/c/0.jpg", b"<html>not an image</html>", "image/jpeg")
    with pytest.raises(ValueError, match="not a JPEG"):
        send(command(ImageKeys=["annotated/c/0.jpg"]), clock)
    assert outcomes() == []


# --- X's errors ------------------------------------------------------------------------


def test_a_short_429_is_waited_out_then_posted(x, clock):
    reset = int(clock.now) + 7
    x.post(
        TWEETS_URL,
        status=429,
        json={"title": "Too Many Requests"},
        headers={"x-rate-limit-reset": str(reset)},
    )
    x.post(TWEETS_URL, **POSTED)

    sent = send(command(), clock)

    assert isinstance(sent, TweetSent)
    assert len(clock.sleeps) == 1
    assert 7 <= clock.sleeps[0] <= 9  # until the reset, plus X's one-second granularity


def test_a_long_429_is_handed_back_to_the_bus_and_posted_later(x, clock):
    # Parked for replay (the bus retries later): nothing is lost, nothing is published yet.
    far = int(clock.now) + 3600
    x.post(
        TWEETS_URL,
        status=429,
        json={"title": "Too Many Requests"},
        headers={"x-rate-limit-reset": str(far)},
    )
    with pytest.raises(RateLimited):
        send(command(), clock)
    assert clock.sleeps == []
    assert outcomes() == []

    x.replace(responses.POST, TWEETS_URL, **POSTED)
    assert isinstance(send(command(), clock), TweetSent)
    assert [o[1] for o in outcomes()] == ["TWEET_SENT"]


def test_5xx_is_retried_with_backoff(x, clock):
    x.post(TWEETS_URL, status=503, json={"title": "Service Unavailable"})
    x.post(TWEETS_URL, status=500, json={"title": "Internal Error"})
    x.post(TWEETS_URL, **POSTED)

    assert isinstance(send(command(), clock), TweetSent)
    assert len(x.calls) == 3
    assert len(clock.sleeps) == 2
    assert 0.5 <= clock.sleeps[0] <= 1 and 1 <= clock.sleeps[1] <= 2


@pytest.mark.parametrize(
    ("failure", "ambiguous"),
    [
        ({"status": 502, "json": {"title": "Bad Gateway"}}, False),
        ({"body": requests.exceptions.ConnectTimeout("connect timed out")}, True),
        ({"body": requests.exceptions.ReadTimeout("read timed out")}, True),
    ],
    ids=["502", "connect-timeout", "read-timeout"],
)
def test_transient_failures_after_the_retries_go_back_to_the_bus(x, clock, failure, ambiguous):
    # Parked for replay after the bus's own retries; nothing is published, the key is free.
    for _ in range(3):
        x.post(TWEETS_URL, **failure)
    with pytest.raises(TransientXError):
        send(command(), clock)
    assert len(x.calls) == 3  # REPLY_MAX_ATTEMPTS
    assert outcomes() == []

    if ambiguous:  # no answer from X: the post may be out, so it is looked up first
        x.get(TIMELINE_URL, json={"data": [], "meta": {"result_count": 0}})
    x.post(TWEETS_URL, **POSTED)
    assert isinstance(send(command(), clock), TweetSent)
    assert [c.request.method for c in x.calls[3:]] == (["GET"] if ambiguous else []) + ["POST"]


def test_a_timed_out_post_that_went_out_is_found_on_x_and_not_posted_again(x, clock):
    for _ in range(3):
        x.post(TWEETS_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(TransientXError):
        send(command(), clock)
    x.get(
        TIMELINE_URL,
        json={
            "data": [
                {"id": "1900000000000000002", "text": "other", "referenced_posts": []},
                {
                    "id": "1900000000000000003",
                    "text": "the reply that went out",
                    "referenced_posts": [{"type": "replied_to", "id": TWEET}],
                },
            ]
        },
    )

    sent = send(command(), clock)

    assert sent.SentId == "1900000000000000003"
    assert [c.request.method for c in x.calls[3:]] == ["GET"]  # looked up, not posted
    lookup = x.calls[3].request
    assert_documented(lookup)
    assert "start_time=" in lookup.url and "referenced_posts" in lookup.url
    assert [o[1] for o in outcomes()] == ["TWEET_SENT"]


def dm_that_timed_out(x, clock, text: str) -> dict:
    """A DM command whose every post attempt timed out: the bus has it back, intent recorded."""
    dm = command(Kind="DIRECT_MESSAGE", ReplyToTweetId=None, Text=text)
    for _ in range(3):
        x.post(DM_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(TransientXError):
        send(dm, clock)
    return dm


def conversation_holds(x, clock, *messages: tuple[str, str, str]) -> None:
    """X's DM conversation with the author: (id, sender, text), sent just now."""
    just_now = datetime.fromtimestamp(clock.now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    events = [
        {"id": i, "event_type": "MessageCreate", "text": t, "sender_id": s, "created_at": just_now}
        for i, s, t in messages
    ]
    x.get(DM_EVENTS_URL, json={"data": events})


def test_a_timed_out_dm_that_went_out_is_found_in_the_conversation(x, clock):
    dm = dm_that_timed_out(x, clock, "Here is a fact.")
    conversation_holds(
        x, clock, ("e9", AUTHOR, "Here is a fact."), ("e8", BOT_ID, "Here is a fact.")
    )

    sent = send(dm, clock)

    assert sent.SentId == "e8"  # the bot's own message, not the user's echo of it
    assert [c.request.method for c in x.calls[3:]] == ["GET"]
    assert_documented(x.calls[3].request)


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        ("You are not allowed to create a Tweet with duplicate content.", "duplicate_text"),
        (
            "Reply to this conversation is not allowed because you have not been mentioned or "
            "otherwise engaged by the author of the post you are replying to.",
            "not_summoned",
        ),
    ],
)
def test_final_403s_are_skipped_with_the_reason_once(x, clock, detail, reason):
    x.post(TWEETS_URL, status=403, json={"title": "Forbidden", "detail": detail})

    first = send(command(), clock)
    again = send(command(), clock)

    assert len(x.calls) == 1  # final: never retried, not even on redelivery
    assert isinstance(first, ReplySkipped)
    assert again == first
    ((source, detail_type, published),) = outcomes()
    assert (source, detail_type) == ("magpie.egress", "REPLY_SKIPPED")
    assert published["Reason"] == reason
    assert published["ReplyToUserId"] == AUTHOR
    assert alerts() == []


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (403, {"title": "Forbidden", "detail": "Your account is suspended."}, "forbidden"),
        (400, {"title": "Invalid Request", "detail": "text is too long"}, "bad_request"),
        (404, {"title": "Not Found Error", "detail": "post deleted"}, "not_found"),
    ],
)
def test_other_refusals_fail_for_good(x, clock, status, body, reason):
    x.post(TWEETS_URL, status=status, json=body)

    failed = send(command(), clock)
    send(command(), clock)

    assert len(x.calls) == 1
    assert isinstance(failed, TweetFailed)
    assert (failed.Reason, failed.StatusCode) == (reason, status)
    assert [o[1] for o in outcomes()] == ["TWEET_FAILED"]


def test_401_fails_alerts_and_a_replay_after_fixing_credentials_answers(x, clock):
    x.post(TWEETS_URL, status=401, json={"title": "Unauthorized"})

    failed = send(command(), clock)

    assert isinstance(failed, TweetFailed)
    assert (failed.Reason, failed.StatusCode) == ("unauthorized", 401)
    assert clock.sleeps == []  # retrying with the same credentials cannot help
    ((_, detail_type, _),) = outcomes()
    assert detail_type == "TWEET_FAILED"
    (alert,) = alerts()
    assert alert == {
        "Kind": "REPLY_FAILED",
        "MessageId": FIXTURE["MessageId"],
        "Reason": "unauthorized",
        "StatusCode": 401,
    }
    assert "test-twitter" not in json.dumps(alert)  # no credential in the alert

    # Redelivered while still broken: X is asked again (nothing was posted), but the
    # failure is published and alerted once.
    send(command(), clock)
    assert len(x.calls) == 2
    assert len(outcomes()) == 1 and len(alerts()) == 1

    # Credentials fixed, the command replayed: the message gets its one reply.
    x.replace(responses.POST, TWEETS_URL, **POSTED)
    assert isinstance(send(command(), clock), TweetSent)
    assert [o[1] for o in outcomes()] == ["TWEET_FAILED", "TWEET_SENT"]


def test_an_unreadable_success_is_never_retried(x, clock):
    # X said 201 but the body is not JSON: the reply may be out, so it is not tried again.
    x.post(TWEETS_URL, status=201, body="<html>ok</html>")

    failed = send(command(), clock)
    send(command(), clock)

    assert len(x.calls) == 1
    assert (failed.Reason, failed.StatusCode) == ("unconfirmed", None)


# --- loop guards -----------------------------------------------------------------------


def test_the_bot_never_answers_itself(x, clock):
    skipped = send(command(ReplyToUserId=BOT_ID), clock)
    assert isinstance(skipped, ReplySkipped)
    assert skipped.Reason == "own_message"
    assert len(x.calls) == 0


def test_at_most_n_replies_per_author_per_hour(x, clock, monkeypatch):
    monkeypatch.setenv("REPLIES_PER_AUTHOR_PER_HOUR", "2")
    backend.reset()
    x.post(TWEETS_URL, **POSTED)
    x.post(TWEETS_URL, **POSTED)

    results = [send(command(MessageId=f"m{i}", ReplyToTweetId=f"m{i}"), clock) for i in range(3)]

    assert [type(r).__name__ for r in results] == ["TweetSent", "TweetSent", "ReplySkipped"]
    assert results[2].Reason == "author_rate_limited"
    assert len(x.calls) == 2


def test_a_refused_reply_does_not_use_up_the_authors_budget(x, clock, monkeypatch):
    monkeypatch.setenv("REPLIES_PER_AUTHOR_PER_HOUR", "1")
    backend.reset()
    x.post(TWEETS_URL, status=403, json={"detail": "duplicate content"})
    x.post(TWEETS_URL, **POSTED)

    first = send(command(MessageId="m1", ReplyToTweetId="m1"), clock)
    second = send(command(MessageId="m2", ReplyToTweetId="m2"), clock)

    assert (first.Reason, type(second)) == ("duplicate_text", TweetSent)


def test_a_bot_to_bot_thread_stops_at_the_maximum_depth(x, clock, monkeypatch):
    monkeypatch.setenv("MAX_BOT_THREAD_DEPTH", "2")
    backend.reset()
    x.post(TWEETS_URL, status=201, json={"data": {"id": "our-1", "text": "x"}})
    x.post(TWEETS_URL, status=201, json={"data": {"id": "our-2", "text": "x"}})

    # Another bot mentions us, then answers each of our replies.
    first = send(command(MessageId="b1", ReplyToTweetId="b1"), clock)
    second = send(command(MessageId="b2", ReplyToTweetId="b2", InReplyToTweetId="our-1"), clock)
    third = send(command(MessageId="b3", ReplyToTweetId="b3", InReplyToTweetId="our-2"), clock)

    assert (first.SentId, second.SentId) == ("our-1", "our-2")
    assert isinstance(third, ReplySkipped)
    assert third.Reason == "thread_too_deep"
    assert len(x.calls) == 2


# --- who may command, and malformed commands -------------------------------------------


def test_a_command_from_another_source_is_refused(x, clock):
    skipped = send(command(), clock, source="magpie.ingress")

    assert skipped.Reason == "untrusted_source"
    assert len(x.calls) == 0
    ((source, detail_type, _),) = outcomes()
    assert (source, detail_type) == ("magpie.egress", "REPLY_SKIPPED")
    # The refusal does not use up the message: the real command is still answered.
    x.post(TWEETS_URL, **POSTED)
    assert isinstance(send(command(), clock), TweetSent)


@pytest.mark.parametrize(
    "changes",
    [
        {"MessageId": None},
        {"Kind": "RETWEET"},
        {"ReplyToTweetId": None},
        {"Text": ""},
        {"ImageKeys": "annotated/a.jpg"},
    ],
    ids=["no-message-id", "unknown-kind", "mention-without-tweet", "empty", "keys-not-a-list"],
)
def test_malformed_commands_raise_and_post_nothing(x, clock, changes):
    # Parked for replay: a broken command is a bug to look at, not something to guess.
    with pytest.raises(ContractError):
        send(command(**changes), clock)
    assert outcomes() == []


# --- locally, without live credentials ---------------------------------------------------


def test_locally_replies_go_to_the_dry_run_outbox_once(local_env, clock):
    backend.blob_store().put("annotated/d/0.jpg", jpeg_bytes(astronaut()), "image/jpeg")
    detail = command(Text="I recognised: Eileen Collins", ImageKeys=["annotated/d/0.jpg"])

    sent = send(detail, clock)
    send(detail, clock)

    (written,) = (local_env / "outbox").glob("*.json")
    record = json.loads(written.read_text())
    assert record["text"] == "I recognised: Eileen Collins"
    assert record["reply_to_tweet_id"] == TWEET
    assert len(record["images"]) == 1
    assert sent.DryRun is True
    assert sent.SentId == record["sent_id"]
    assert [o[1] for o in outcomes()] == ["TWEET_SENT"]


def test_a_dm_answered_in_other_words_before_a_crash_is_not_answered_again(x, clock):
    # The first attempt sent "Here is a fact." and timed out; the message came back with
    # another answer (the responders chose again): the bot's DM since the intent counts.
    first = dm_that_timed_out(x, clock, "Here is a fact.")
    conversation_holds(x, clock, ("e7", BOT_ID, "Here is a fact."))

    sent = send({**first, "Text": "Here is a joke."}, clock)

    assert sent.SentId == "e7"
    assert [c.request.method for c in x.calls[3:]] == ["GET"]  # nothing posted twice
