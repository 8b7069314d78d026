"""`magpie x` against X's documented answers (`responses`), every request checked against X's
API reference (tests/fixtures/x-openapi/), and the --aws keys read from Secrets Manager (moto).

The answers are the examples of X's webhooks, Account Activity and X Activity quickstarts."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from magpie.cli import main
from magpie.x_admin import BOT_EVENTS, TOKEN_URL
from moto import mock_aws

from chalicelib import backend
from tests.egress.x_openapi import assert_documented

API = "https://api.x.com"
# X's decommissioned example token (bearer-token guide)
BEARER = (
    "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3D"
    "EUifiRBkKG5E2XzMDjRfl76ZC9Ub0wnz4XsNiRVBChTYbJcE3F"
)
BOT = "2244994945"
WEBHOOK = "1234567890"
KEYS = {
    "TWITTER_API_KEY": "ck-key",
    "TWITTER_API_SECRET": "cs-secret",
    "TWITTER_ACCESS_TOKEN": "at-token",
    "TWITTER_ACCESS_TOKEN_SECRET": "ats-secret",
}
ME = {"data": {"id": BOT, "name": "Developers", "username": "XDevelopers"}}
WEBHOOK_LIST = {
    "data": [
        {
            "created_at": "2025-01-15T12:00:00.000Z",
            "id": WEBHOOK,
            "url": "https://yourdomain.com/webhooks/twitter",
            "valid": True,
        }
    ],
    "meta": {"result_count": 1},
}
AAA = f"{API}/2/account_activity/webhooks/{WEBHOOK}/subscriptions"


def subscription(sub_id: str, event: str, user: str, webhook: str = WEBHOOK) -> dict:
    return {
        "subscription_id": sub_id,
        "event_type": event,
        "filter": {"user_id": user},
        "created_at": "2025-10-09T16:35:08.000Z",
        "updated_at": "2025-10-09T16:35:08.000Z",
        "tag": "magpie",
        "webhook_id": webhook,
    }


@pytest.fixture
def x_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MAGPIE_BACKEND", "local")
    monkeypatch.setenv("MAGPIE_HOME", str(tmp_path / "home"))
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    backend.reset()
    yield
    backend.reset()


@pytest.fixture
def x():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(TOKEN_URL, json={"token_type": "bearer", "access_token": BEARER})
        yield rsps


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["x", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def x_calls(x) -> list:
    """The API calls (not the token request), each checked against X's reference."""
    calls = [c for c in x.calls if c.request.url != TOKEN_URL]
    for call in calls:
        assert_documented(call.request)
    return calls


def auth_of(request) -> str:
    header = request.headers["Authorization"]
    header = header.decode() if isinstance(header, bytes) else header
    if header == f"Bearer {BEARER}":
        return "bearer"
    assert header.startswith("OAuth ")
    assert 'oauth_consumer_key="ck-key"' in header and 'oauth_token="at-token"' in header
    assert "oauth_signature=" in header
    return "user"


# --- webhooks --------------------------------------------------------------------------


def test_webhooks_add_registers_the_url_with_the_bearer_token(x_env, x, capsys):
    x.post(
        f"{API}/2/webhooks",
        json={
            "data": {
                "id": WEBHOOK,
                "url": "https://yourdomain.com/webhooks/twitter",
                "valid": True,
                "created_at": "2025-01-15T12:00:00.000Z",
            }
        },
    )

    code, out, err = run(capsys, "webhooks", "add", "https://yourdomain.com/webhooks/twitter")

    assert (code, err) == (0, "")
    assert f"webhook {WEBHOOK} https://yourdomain.com/webhooks/twitter valid=yes" in out
    token = x.calls[0].request
    assert (
        token.headers["Authorization"] == "Basic " + base64.b64encode(b"ck-key:cs-secret").decode()
    )
    assert dict(parse_qsl(token.body)) == {"grant_type": "client_credentials"}
    (call,) = x_calls(x)
    assert json.loads(call.request.body) == {"url": "https://yourdomain.com/webhooks/twitter"}
    assert auth_of(call.request) == "bearer"


def test_webhooks_list_check_and_delete(x_env, x, capsys):
    x.get(f"{API}/2/webhooks", json=WEBHOOK_LIST)
    x.put(f"{API}/2/webhooks/{WEBHOOK}", json={"data": {"valid": True}})
    x.delete(f"{API}/2/webhooks/{WEBHOOK}", json={"data": {"deleted": True}})

    listed = run(capsys, "webhooks", "list")
    checked = run(capsys, "webhooks", "check", WEBHOOK)
    deleted = run(capsys, "webhooks", "delete", WEBHOOK)

    assert listed[0] == checked[0] == deleted[0] == 0
    assert f"{WEBHOOK}  https://yourdomain.com/webhooks/twitter  valid=yes" in listed[1]
    assert "1 webhook(s)" in listed[1]
    assert f"webhook {WEBHOOK}: CRC sent, valid=yes" in checked[1]
    assert f"webhook {WEBHOOK}: deleted=yes" in deleted[1]
    assert [(c.request.method, auth_of(c.request)) for c in x_calls(x)] == [
        ("GET", "bearer"),
        ("PUT", "bearer"),
        ("DELETE", "bearer"),
    ]


def test_x_api_base_url_sends_every_call_to_that_host(x_env, x, capsys, monkeypatch):
    # The emulator run points Magpie at a stand-in X; `magpie x` must follow it too.
    monkeypatch.setenv("X_API_BASE_URL", "https://x-stub.example")
    x.remove(responses.POST, TOKEN_URL)
    x.post(
        "https://x-stub.example/oauth2/token",
        json={"token_type": "bearer", "access_token": BEARER},
    )
    x.get("https://x-stub.example/2/webhooks", json=WEBHOOK_LIST)

    code, _, err = run(capsys, "webhooks", "list")

    assert (code, err) == (0, "")
    assert {c.request.url.split("/")[2] for c in x.calls} == {"x-stub.example"}


def test_a_delete_answered_204_without_a_body_is_done(x_env, x, capsys):
    x.delete(f"{API}/2/webhooks/{WEBHOOK}", status=204)

    code, out, err = run(capsys, "webhooks", "delete", WEBHOOK)

    assert (code, err) == (0, "")
    assert f"webhook {WEBHOOK}: deleted=yes" in out


def test_a_webhook_that_fails_the_crc_says_so_and_fails(x_env, x, capsys):
    x.put(f"{API}/2/webhooks/{WEBHOOK}", json={"data": {"valid": False}})

    code, out, err = run(capsys, "webhooks", "check", WEBHOOK)

    assert code == 2
    assert "valid=no" in out
    assert err.count("\n") == 1 and "failed the CRC" in err


@pytest.mark.parametrize(
    "url",
    [
        "http://yourdomain.com/webhooks/twitter",
        "https://yourdomain.com:5000/webhook",
        "https://yourdomain.com/" + "a" * 200,
        "yourdomain.com/webhooks",
    ],
)
def test_a_webhook_url_x_would_refuse_is_refused_here(x_env, capsys, url):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as x:
        code, _, err = run(capsys, "webhooks", "add", url)
        assert not x.calls

    assert code == 2 and "the webhook URL must be https, without a port" in err


def test_a_malformed_webhook_id_is_refused_before_calling_x(x_env, capsys):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as x:
        code, _, err = run(capsys, "webhooks", "delete", "../2/users")
        assert not x.calls

    assert code == 2 and "webhook id must be 1 to 19 digits" in err


# --- subscriptions ---------------------------------------------------------------------


def test_subscribe_creates_the_bots_x_activity_subscriptions_once(x_env, x, capsys):
    x.get(f"{API}/2/users/me", json=ME)
    x.get(f"{API}/2/webhooks", json=WEBHOOK_LIST)
    x.get(
        f"{API}/2/activity/subscriptions",
        json={
            "data": [subscription("1976325569252868096", "post.mention.create", BOT)],
            "meta": {"total_subscriptions": 1},
        },
    )
    # two of the three shapes X documents for the answer: the reference's, and the
    # quickstart's list (the bare one is test_subscribe_reads_a_bare_subscription)
    shapes = [
        lambda sub: {"data": {"subscription": sub}},
        lambda sub: {"data": [sub], "meta": {"total_subscriptions": 4}},
    ]
    for index, (event, shape) in enumerate(zip(BOT_EVENTS[1:], shapes, strict=True)):
        sub = subscription(f"19763255692528681{index}", event, BOT)
        x.post(f"{API}/2/activity/subscriptions", json=shape(sub))

    code, out, err = run(capsys, "subscribe")

    assert (code, err) == (0, "")
    assert f"account @XDevelopers (user id {BOT})" in out
    assert "post.mention.create: already subscribed (X bills $0.005 per event delivered)" in out
    for index, event in enumerate(BOT_EVENTS[1:]):
        assert (
            f"activity         19763255692528681{index}   {event:<22} "
            f"user_id={BOT} webhook={WEBHOOK} tag=magpie"
        ) in out
    assert "tag=magpie (X bills $0.005 per event delivered)" in out  # post.reply.create
    assert "tag=magpie (X bills $0.010 per event delivered)" in out  # dm.received
    assert "post.quote.create" not in out  # answered only as post.mention.create
    calls = x_calls(x)
    posts = [c.request for c in calls if c.request.method == "POST"]
    assert [json.loads(p.body) for p in posts] == [
        {"event_type": e, "filter": {"user_id": BOT}, "tag": "magpie", "webhook_id": WEBHOOK}
        for e in BOT_EVENTS[1:]
    ]
    assert {auth_of(p) for p in posts} == {"user"}  # private events: the bot's own context
    assert auth_of(calls[0].request) == "user"  # /2/users/me
    listing = next(c.request for c in calls if c.request.url.startswith(f"{API}/2/activity"))
    assert dict(parse_qsl(urlsplit(listing.url).query)) == {"max_results": "1000"}


def test_subscribe_reads_a_bare_subscription_and_refuses_an_event_magpie_does_not_answer(
    x_env, x, capsys
):
    x.get(f"{API}/2/users/me", json=ME)
    x.get(f"{API}/2/webhooks", json=WEBHOOK_LIST)
    x.get(f"{API}/2/activity/subscriptions", json={"meta": {"total_subscriptions": 0}})
    x.post(
        f"{API}/2/activity/subscriptions",
        json={"data": subscription("1976325569252868100", "dm.received", BOT)},
    )

    code, out, _ = run(capsys, "subscribe", "--event", "dm.received")
    assert code == 0
    assert "dm.received            user_id=" in out and "$0.010 per event" in out

    code, _, err = run(capsys, "subscribe", "--event", "post.quote.create")
    assert code == 2 and "post.quote.create it delivers for nothing" in err


def test_subscribe_to_the_account_activity_api(x_env, x, capsys):
    x.remove(responses.POST, TOKEN_URL)  # both calls are in the bot's user context
    x.get(f"{API}/2/users/me", json=ME)
    x.get(f"{AAA}/all", json={"data": {"subscribed": False}})
    x.post(f"{AAA}/all", json={"data": {"subscribed": True}})

    code, out, _ = run(capsys, "subscribe", "--api", "account-activity", "--webhook", WEBHOOK)

    assert code == 0
    assert f"account-activity webhook={WEBHOOK} subscribed=yes" in out
    assert [(c.request.method, auth_of(c.request)) for c in x_calls(x)] == [
        ("GET", "user"),
        ("GET", "user"),
        ("POST", "user"),
    ]


def test_subscriptions_lists_only_the_bots_own(x_env, x, capsys):
    x.get(f"{API}/2/users/me", json=ME)
    x.get(
        f"{API}/2/activity/subscriptions",
        json={
            "data": [
                subscription("1976325569252868096", "post.mention.create", BOT),
                subscription("1976325569252868097", "profile.update.bio", "987654321"),
            ],
            "meta": {"total_subscriptions": 2, "next_token": "7140w0000000000000000000"},
        },
    )
    x.get(
        f"{API}/2/activity/subscriptions",
        json={"data": [subscription("1976325569252868098", "dm.received", BOT)]},
    )
    x.get(f"{API}/2/webhooks", json=WEBHOOK_LIST)
    x.get(
        f"{AAA}/all/list",
        json={
            "data": {
                "application_id": "29893711",
                "webhook_id": WEBHOOK,
                "webhook_url": "https://yourdomain.com/webhooks/twitter",
                "subscriptions": [{"user_id": BOT}],
            }
        },
    )

    code, out, _ = run(capsys, "subscriptions", "--api", "both")

    assert code == 0
    assert "1976325569252868096" in out and "1976325569252868098" in out
    assert "987654321" not in out
    assert f"2 X Activity subscription(s) for user {BOT}" in out
    assert f"account-activity webhook={WEBHOOK} user_id={BOT}: subscribed" in out
    second_page = x_calls(x)[2].request
    assert dict(parse_qsl(urlsplit(second_page.url).query))["pagination_token"] == (
        "7140w0000000000000000000"
    )


def test_unsubscribe_removes_only_the_bots_subscriptions_on_that_webhook(x_env, x, capsys):
    x.get(f"{API}/2/users/me", json=ME)
    x.get(
        f"{API}/2/activity/subscriptions",
        json={
            "data": [
                subscription("1976325569252868096", "post.mention.create", BOT),
                subscription("1976325569252868097", "post.mention.create", BOT, "555"),
                subscription("1976325569252868099", "profile.update.bio", "987654321"),
            ]
        },
    )
    x.delete(
        f"{API}/2/activity/subscriptions/1976325569252868096",
        json={"data": {"deleted": True}, "meta": {"total_subscriptions": 2}},
    )
    x.delete(f"{AAA}/{BOT}/all", json={"data": {"subscribed": False}})

    code, out, _ = run(capsys, "unsubscribe", "--api", "both", "--webhook", WEBHOOK)

    assert code == 0
    assert "1976325569252868096 post.mention.create: deleted=yes" in out
    assert "1 X Activity subscription(s) removed" in out
    assert f"account-activity webhook={WEBHOOK}: unsubscribed=yes" in out
    deletes = [c.request for c in x_calls(x) if c.request.method == "DELETE"]
    assert {auth_of(d) for d in deletes} == {"bearer"}


def test_subscribe_needs_a_webhook_when_the_app_has_several(x_env, x, capsys):
    x.get(f"{API}/2/users/me", json=ME)
    second = dict(WEBHOOK_LIST["data"][0], id="1234567891")
    x.get(f"{API}/2/webhooks", json={"data": [*WEBHOOK_LIST["data"], second]})

    code, _, err = run(capsys, "subscribe")

    assert code == 2
    assert err == (
        "magpie x: pass --webhook: the app has 2 webhook(s) (1234567890, 1234567891); "
        "add one with `magpie x webhooks add URL`\n"
    )


# --- X's errors: one clear line each ---------------------------------------------------


def test_401_names_the_credentials(x_env, capsys):
    with responses.RequestsMock() as x:
        x.post(
            TOKEN_URL,
            status=403,
            json={
                "errors": [
                    {
                        "code": 99,
                        "message": "Unable to verify your credentials",
                        "label": "authenticity_token_error",
                    }
                ]
            },
        )
        forbidden = run(capsys, "webhooks", "list")
    with responses.RequestsMock() as x:
        x.get(
            f"{API}/2/users/me",
            status=401,
            json={
                "title": "Unauthorized",
                "type": "about:blank",
                "status": 401,
                "detail": "Unauthorized",
            },
        )
        unauthorized = run(capsys, "subscriptions")

    assert forbidden[0] == 6 and "Unable to verify your credentials" in forbidden[2]
    code, _, err = unauthorized
    assert code == 6
    assert err.count("\n") == 1
    assert err.startswith("magpie x: X answered 401: Unauthorized")
    assert "X refused the credentials" in err


def test_403_carries_xs_reason(x_env, x, capsys):
    x.post(
        f"{API}/2/webhooks",
        status=403,
        json={
            "client_id": "29893711",
            "detail": "When authenticating requests to the Twitter API v2 endpoints, you must "
            "use keys and tokens from a Twitter developer App that is attached to a Project. "
            "You can create a project via the developer portal.",
            "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
            "title": "Client Forbidden",
            "required_enrollment": "Appropriate Level of API Access",
            "reason": "client-not-enrolled",
            "type": "https://api.twitter.com/2/problems/client-forbidden",
        },
    )

    code, _, err = run(capsys, "webhooks", "add", "https://yourdomain.com/webhooks/twitter")

    assert code == 6
    assert err.count("\n") == 1
    assert err.startswith("magpie x: X answered 403: client-not-enrolled | When authenticating")


def test_429_says_when_to_try_again(x_env, x, capsys):
    x.get(
        f"{API}/2/webhooks",
        status=429,
        json={"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank"},
        headers={
            "x-rate-limit-limit": "15",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": "1705420800",
        },
    )

    code, _, err = run(capsys, "webhooks", "list")

    assert code == 4
    assert err == (
        "magpie x: X answered 429: Too Many Requests "
        "(rate limited; try again after 2024-01-16T16:00:00+00:00)\n"
    )


def test_x_unreachable_is_worth_retrying(x_env, capsys):
    with responses.RequestsMock() as x:
        x.post(TOKEN_URL, json={"token_type": "bearer", "access_token": BEARER})
        x.get(f"{API}/2/webhooks", status=503, body="Service Unavailable")
        code, _, err = run(capsys, "webhooks", "list")

    assert code == 4 and err == "magpie x: X answered 503\n"


@pytest.fixture
def keyless_env(tmp_path, monkeypatch):
    """A local home with none of the app's X keys in the environment."""
    monkeypatch.setenv("MAGPIE_BACKEND", "local")
    monkeypatch.setenv("MAGPIE_HOME", str(tmp_path))
    for name in KEYS:
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    backend.reset()


def test_without_the_apps_keys_nothing_is_called(keyless_env, capsys):
    tmp_path = keyless_env
    (tmp_path / "x-secret.json").write_text(json.dumps({"ApiKey": "local-1", "ApiSecret": "s"}))
    backend.reset()

    with responses.RequestsMock() as x:
        code, _, err = run(capsys, "webhooks", "list")
        assert not x.calls

    assert code == 3 and "magpie x needs the app's X keys" in err


# --- --aws: the keys come from the Secrets Manager secret ------------------------------


def test_aws_reads_the_keys_from_secrets_manager(keyless_env, monkeypatch, aws_credentials, capsys):
    import boto3

    monkeypatch.setenv("TWITTER_SECRET_ID", "magpie/x")
    secret = {
        "ApiKey": "aws-key",
        "ApiSecret": "aws-secret",
        "AccessToken": "aws-token",
        "AccessTokenSecret": "aws-token-secret",
    }
    with mock_aws():
        boto3.client("secretsmanager").create_secret(
            Name="magpie/x", SecretString=json.dumps(secret)
        )
        backend.reset()
        with responses.RequestsMock() as x:
            x.post(TOKEN_URL, json={"token_type": "bearer", "access_token": BEARER})
            x.get(f"{API}/2/webhooks", json={"data": [], "meta": {"result_count": 0}})
            code, out, _ = run(capsys, "--aws", "webhooks", "list")
            token = x.calls[0].request

    assert code == 0 and "0 webhook(s)" in out
    assert token.headers["Authorization"] == (
        "Basic " + base64.b64encode(b"aws-key:aws-secret").decode()
    )


def test_aws_without_the_secret_is_one_clear_line(
    keyless_env, monkeypatch, aws_credentials, capsys
):
    monkeypatch.setenv("TWITTER_SECRET_ID", "magpie/missing")
    with mock_aws():
        backend.reset()
        code, _, err = run(capsys, "--aws", "webhooks", "list")

    assert code == 3
    assert err.startswith("magpie x: could not read the X keys' secret") and err.count("\n") == 1
