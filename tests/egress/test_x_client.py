import json
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import requests
import responses
from oauthlib.oauth1.rfc5849 import signature
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header, unescape

from chalicelib.egress.x_client import (
    MEDIA_UPLOAD_URL,
    FinalXError,
    RateLimited,
    TransientXError,
    Unauthorized,
    XClient,
    XCredentials,
    XError,
)
from tests.egress.x_openapi import assert_documented, multipart_fields

CREDS = XCredentials(
    api_key="ck-key",
    api_secret="cs-secret",
    access_token="at-token",
    access_token_secret="ats-secret",
)
TWEETS_URL = "https://api.twitter.com/2/tweets"
DM_URL = "https://api.twitter.com/2/dm_conversations/with/42/messages"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + b"\r\n--not-a-boundary\r\n"

DUPLICATE_403 = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
# X's current answer to a reply the author did not summon (a v2 problem, 2026).
NOT_SUMMONED_403_CURRENT = {
    "title": "Forbidden",
    "type": "https://api.x.com/2/problems/not-authorized-for-resource",
    "detail": "You can only reply to or quote posts where you are mentioned or are the author.",
    "resource_type": "tweet",
    "status": 403,
}
NOT_SUMMONED_403 = {
    "detail": "Reply to this conversation is not allowed because you have not been mentioned "
    "or otherwise engaged by the author of the post you are replying to.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}


def oauth_params(request) -> dict[str, str]:
    header = request.headers["Authorization"]
    if isinstance(header, bytes):
        header = header.decode()
    assert header.startswith("OAuth ")
    return {k: unescape(v) for k, v in parse_authorization_header(header)}


def assert_oauth1_signed(request, consumer_secret="cs-secret", token_secret="ats-secret"):
    """The Authorization header is a well-formed OAuth 1.0a header whose HMAC-SHA1 signature
    verifies over the method, URL and OAuth parameters (bodies that are not form-encoded are
    not signed, RFC 5849 3.4.1.3.1)."""
    params = oauth_params(request)
    assert params["oauth_consumer_key"] == "ck-key"
    assert params["oauth_token"] == "at-token"
    assert params["oauth_signature_method"] == "HMAC-SHA1"
    assert params["oauth_version"] == "1.0"
    assert params["oauth_nonce"] and params["oauth_timestamp"].isdigit()
    header = request.headers["Authorization"]
    header = header.decode() if isinstance(header, bytes) else header
    to_verify = SimpleNamespace(
        params=signature.collect_parameters(
            uri_query=urlsplit(request.url).query,
            headers={"Authorization": header},
            exclude_oauth_signature=True,
        ),
        uri=request.url,
        http_method=request.method,
        signature=params["oauth_signature"],
    )
    return signature.verify_hmac_sha1(to_verify, consumer_secret, token_secret)


@pytest.fixture
def client():
    return XClient(CREDS)


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


# --- credentials ---------------------------------------------------------------------


def test_credentials_repr_shows_no_secret():
    text = repr(CREDS) + str(CREDS)
    for secret in ("ck-key", "cs-secret", "at-token", "ats-secret"):
        assert secret not in text


# --- replies ---------------------------------------------------------------------------


def test_reply_posts_the_exact_v2_body_signed_with_oauth1(client, mocked):
    mocked.post(TWEETS_URL, status=201, json={"data": {"id": "1900000000000000001", "text": "hi"}})

    sent = client.reply("hi there", "1234567890", ["111", "222"])

    assert sent == "1900000000000000001"
    (call,) = mocked.calls
    assert json.loads(call.request.body) == {
        "text": "hi there",
        "reply": {"in_reply_to_tweet_id": "1234567890"},
        "media": {"media_ids": ["111", "222"]},
    }
    assert call.request.headers["Content-Type"] == "application/json"
    assert assert_documented(call.request) == "POST /2/tweets"
    assert assert_oauth1_signed(call.request)
    assert not assert_oauth1_signed(call.request, token_secret="wrong")
    assert call.request.req_kwargs["timeout"] == 10.0


def test_reply_without_media_sends_no_media_field(client, mocked):
    mocked.post(TWEETS_URL, status=201, json={"data": {"id": "5", "text": "x"}})

    client.reply("x", "9", [])

    assert json.loads(mocked.calls[0].request.body) == {
        "text": "x",
        "reply": {"in_reply_to_tweet_id": "9"},
    }
    assert_documented(mocked.calls[0].request)


def test_reply_leaves_the_rest_of_the_thread_out(client, mocked):
    mocked.post(TWEETS_URL, status=201, json={"data": {"id": "5", "text": "x"}})

    client.reply("x", "9", [], exclude_reply_user_ids=["2244994945", "783214"])

    body = json.loads(mocked.calls[0].request.body)
    assert body["reply"] == {
        "in_reply_to_tweet_id": "9",
        "exclude_reply_user_ids": ["2244994945", "783214"],
    }
    assert_documented(mocked.calls[0].request)


def test_a_response_without_an_id_is_an_error(client, mocked):
    mocked.post(TWEETS_URL, status=201, json={"errors": [{"message": "odd"}]})

    with pytest.raises(XError, match=r"data\.id"):
        client.reply("x", "9", [])


def test_a_base_url_sends_every_call_to_that_host_instead(mocked):
    stub = "http://127.0.0.1:4566/x-stub"
    mocked.post(f"{stub}/2/media/upload", json={"data": {"id": "71", "media_key": "3_71"}})
    mocked.post(f"{stub}/2/tweets", status=201, json={"data": {"id": "5", "text": "x"}})
    client = XClient(CREDS, base_url=stub + "/")

    client.reply("x", "9", [client.upload_media(PNG, "image/png")])

    assert [c.request.url for c in mocked.calls] == [f"{stub}/2/media/upload", f"{stub}/2/tweets"]
    assert all(assert_oauth1_signed(c.request) for c in mocked.calls)


# --- direct messages -------------------------------------------------------------------


def test_send_dm_posts_to_the_participant_conversation(client, mocked):
    mocked.post(
        DM_URL,
        status=201,
        json={"data": {"dm_conversation_id": "42-99", "dm_event_id": "1580000000000000000"}},
    )

    sent = client.send_dm("42", "hello", "777")

    assert sent == "1580000000000000000"
    (call,) = mocked.calls
    assert call.request.url == DM_URL
    assert json.loads(call.request.body) == {"text": "hello", "attachments": [{"media_id": "777"}]}
    assert assert_documented(call.request) == (
        "POST /2/dm_conversations/with/{participant_id}/messages"
    )
    assert assert_oauth1_signed(call.request)
    assert call.request.req_kwargs["timeout"] == 10.0


def test_send_dm_without_media(client, mocked):
    mocked.post(DM_URL, status=201, json={"data": {"dm_conversation_id": "c", "dm_event_id": "e"}})

    assert client.send_dm("42", "hello", None) == "e"
    assert json.loads(mocked.calls[0].request.body) == {"text": "hello"}
    assert_documented(mocked.calls[0].request)


def test_an_image_only_dm_sends_the_attachment_without_empty_text(client, mocked):
    mocked.post(DM_URL, status=201, json={"data": {"dm_conversation_id": "c", "dm_event_id": "e"}})

    assert client.send_dm("42", "", "777") == "e"

    assert json.loads(mocked.calls[0].request.body) == {"attachments": [{"media_id": "777"}]}
    assert_documented(mocked.calls[0].request)


# --- media upload ----------------------------------------------------------------------


def test_upload_media_sends_one_signed_multipart_request(mocked):
    mocked.post(
        MEDIA_UPLOAD_URL,
        status=200,
        json={
            "data": {
                "id": "1880028106020515840",
                "media_key": "3_1880028106020515840",
                "size": len(PNG),
                "expires_after_secs": 86400,
                "image": {"image_type": "image/png", "w": 1, "h": 1},
            }
        },
    )
    client = XClient(CREDS, timeout=3.5)

    media_id = client.upload_media(PNG, "image/png")

    assert media_id == "1880028106020515840"
    (call,) = mocked.calls
    assert call.request.url == "https://api.x.com/2/media/upload"
    fields = multipart_fields(call.request)
    assert set(fields) == {"media", "media_category"}  # X's one-shot schema takes no media_type
    assert fields["media_category"] == (None, None, b"tweet_image")
    assert assert_documented(call.request) == "POST /2/media/upload"
    filename, content_type, payload = fields["media"]
    assert filename == "media"
    assert content_type == "image/png"
    assert payload == PNG
    assert assert_oauth1_signed(call.request)
    assert call.request.req_kwargs["timeout"] == 3.5


def test_upload_media_for_a_dm_uses_the_dm_category(client, mocked):
    mocked.post(MEDIA_UPLOAD_URL, status=200, json={"data": {"id": "8", "media_key": "3_8"}})

    client.upload_media(b"jpeg-bytes", "image/jpeg", media_category="dm_image")

    fields = multipart_fields(mocked.calls[0].request)
    assert fields["media_category"][2] == b"dm_image"
    assert fields["media"][1:] == ("image/jpeg", b"jpeg-bytes")
    assert_documented(mocked.calls[0].request)


def test_upload_media_refuses_empty_data(client):
    with pytest.raises(ValueError):
        client.upload_media(b"", "image/png")


# --- error mapping ---------------------------------------------------------------------

ERROR_CASES = [
    pytest.param(
        {
            "status": 429,
            "json": {"title": "Too Many Requests"},
            "headers": {"x-rate-limit-reset": "1700000000"},
        },
        RateLimited,
        {"reset_at": 1700000000.0, "status_code": 429},
        id="429",
    ),
    pytest.param(
        {"status": 500, "json": {"title": "Internal Server Error"}},
        TransientXError,
        {"status_code": 500},
        id="500",
    ),
    pytest.param(
        {"status": 503, "body": "Service Unavailable"},
        TransientXError,
        {"status_code": 503},
        id="503-not-json",
    ),
    pytest.param(
        {"status": 403, "json": DUPLICATE_403},
        FinalXError,
        {"reason": "duplicate_text", "status_code": 403},
        id="403-duplicate",
    ),
    pytest.param(
        {"status": 403, "json": NOT_SUMMONED_403},
        FinalXError,
        {"reason": "not_summoned", "status_code": 403},
        id="403-not-summoned",
    ),
    pytest.param(
        {"status": 403, "json": NOT_SUMMONED_403_CURRENT},
        FinalXError,
        {"reason": "not_summoned", "status_code": 403},
        id="403-not-summoned-current-wording",
    ),
    pytest.param(
        {
            "status": 403,
            "json": {"errors": [{"message": NOT_SUMMONED_403_CURRENT["detail"], "code": 453}]},
        },
        FinalXError,
        {"reason": "not_summoned", "status_code": 403},
        id="403-not-summoned-current-wording-as-errors",
    ),
    pytest.param(
        {"status": 403, "json": {"title": "Forbidden", "detail": "You are not permitted."}},
        FinalXError,
        {"reason": "forbidden"},
        id="403-other",
    ),
    pytest.param(
        {"status": 401, "json": {"title": "Unauthorized", "status": 401, "detail": "Unauthorized"}},
        Unauthorized,
        {"status_code": 401},
        id="401",
    ),
    pytest.param(
        {
            "status": 400,
            "json": {"errors": [{"message": "bad media id"}], "title": "Invalid Request"},
        },
        FinalXError,
        {"reason": "bad_request", "status_code": 400},
        id="400",
    ),
    pytest.param(
        {"body": requests.exceptions.ReadTimeout("read timed out")},
        TransientXError,
        {"status_code": None},
        id="timeout",
    ),
    pytest.param(
        {"body": requests.exceptions.ConnectionError("reset by peer")},
        TransientXError,
        {"status_code": None},
        id="connection-error",
    ),
]


@pytest.mark.parametrize(("reply", "error", "attributes"), ERROR_CASES)
def test_reply_errors_are_mapped(client, mocked, reply, error, attributes):
    mocked.post(TWEETS_URL, **reply)

    with pytest.raises(error) as raised:
        client.reply("hi", "1", [])

    assert type(raised.value) is error
    for name, value in attributes.items():
        assert getattr(raised.value, name) == value


@pytest.mark.parametrize(("reply", "error", "attributes"), ERROR_CASES)
def test_upload_errors_are_mapped_the_same_way(client, mocked, reply, error, attributes):
    mocked.post(MEDIA_UPLOAD_URL, **reply)

    with pytest.raises(error) as raised:
        client.upload_media(PNG, "image/png")

    assert type(raised.value) is error
    for name, value in attributes.items():
        assert getattr(raised.value, name) == value


def test_dm_errors_are_mapped_too(client, mocked):
    mocked.post(
        DM_URL,
        status=403,
        json={"title": "Forbidden", "detail": "You cannot send messages to this user."},
    )

    with pytest.raises(FinalXError) as raised:
        client.send_dm("42", "hi", None)

    assert raised.value.reason == "forbidden"
    assert "cannot send messages" in str(raised.value)


def test_an_exhausted_24_hour_quota_resets_later_than_the_window(client, mocked):
    mocked.post(
        TWEETS_URL,
        status=429,
        json={"title": "Too Many Requests"},
        headers={
            "x-rate-limit-reset": "1700000100",
            "x-user-limit-24hour-remaining": "0",
            "x-user-limit-24hour-reset": "1700050000",
            "x-app-limit-24hour-remaining": "1000",
            "x-app-limit-24hour-reset": "1700090000",
        },
    )

    with pytest.raises(RateLimited) as raised:
        client.reply("hi", "1", [])

    assert raised.value.reset_at == 1700050000.0


@pytest.mark.parametrize("reset", ["soon", "nan", "inf", "-inf", "1e400", "-5", "1e12", ""])
def test_a_reset_that_is_not_a_time_is_unknown(client, mocked, reset):
    mocked.post(
        TWEETS_URL,
        status=429,
        json={"title": "Too Many Requests"},
        headers={
            "x-rate-limit-reset": reset,
            "x-app-limit-24hour-remaining": "0",
            "x-app-limit-24hour-reset": reset,
        },
    )

    with pytest.raises(RateLimited) as raised:
        client.reply("hi", "1", [])

    assert raised.value.reset_at is None


def test_a_429_without_reset_header_has_no_reset(client, mocked):
    mocked.post(TWEETS_URL, status=429, json={"title": "Too Many Requests"})

    with pytest.raises(RateLimited) as raised:
        client.reply("hi", "1", [])

    assert raised.value.reset_at is None


def test_a_timeout_surfaces_as_transient_and_the_default_timeout_is_sent(mocked):
    mocked.post(DM_URL, body=requests.exceptions.ConnectTimeout("connect timed out"))
    client = XClient(CREDS, timeout=0.25)

    with pytest.raises(TransientXError, match="timed out"):
        client.send_dm("42", "hi", None)

    assert mocked.calls[0].request.req_kwargs["timeout"] == 0.25


def test_error_messages_carry_the_detail_not_the_payload(client, mocked):
    long_detail = "x" * 5000
    mocked.post(TWEETS_URL, status=403, json={"detail": long_detail, "title": "Forbidden"})

    with pytest.raises(FinalXError) as raised:
        client.reply("hi", "1", [])

    assert len(str(raised.value)) < 300
