"""Attacks on the webhook, through chalice.test.Client on the ingress app, local backend.

Properties (hypothesis): whatever the body, headers, signature or CRC token, the answer is
never a 5xx, and nothing reaches the bus unless the body carries a valid signature.
Targeted cases: the CRC oracle, forged and replayed signatures, oversize and deeply nested
JSON, numbers Python refuses to parse. tests/ingress/test_webhook_aws.py holds the same
attacks' basic cases on the AWS backend; these add the local backend and the fuzzing.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from magpie.apps import load_app

from chalicelib import backend
from chalicelib.ingress.signature import SIGNATURE_HEADER, sign
from chalicelib.ingress.webhook import MAX_BODY_BYTES, MAX_JSON_DEPTH
from tests.conftest import SAMPLES, SECRET

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MENTION = (SAMPLES / "mention-plain.json").read_bytes()


@pytest.fixture
def client(local_env):
    with Client(load_app("ingress").app) as test_client:
        yield test_client


def bus_size() -> int:
    return backend.local_bus_store().last_seq()


def messages_on_bus() -> list[dict]:
    return [
        envelope
        for _, envelope in backend.local_bus_store().events_since(0)
        if envelope["detail-type"] == "MESSAGE_RECEIVED"
    ]


def post(client, body: bytes, signature: str | None, content_type: str = "application/json"):
    headers = {"content-type": content_type}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return client.http.post("/twitter", headers=headers, body=body)


# --- strategies --------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
ACTIVITY_KEYS = ["tweet_create_events", "direct_message_events", "favorite_events",
                 "follow_events", "for_user_id", "user_has_blocked", "data"]  # fmt: skip


@st.composite
def bodies(draw) -> bytes:
    """Raw bytes, arbitrary JSON, Account-Activity-shaped JSON, and mutated real samples."""
    kind = draw(st.sampled_from(["bytes", "json", "shaped", "sample"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "shaped":
        keys = draw(st.lists(st.sampled_from(ACTIVITY_KEYS), min_size=1, max_size=3))
        return json.dumps({key: draw(json_values) for key in keys}).encode()
    sample = json.loads(MENTION)
    tweet = sample["tweet_create_events"][0]
    field = draw(st.sampled_from(sorted(tweet)))
    tweet[field] = draw(json_values)
    return json.dumps(sample).encode()


signature_kinds = st.sampled_from(
    ["valid", "absent", "empty", "random", "wrong_secret", "other_body", "uppercase",
     "no_prefix", "sha1"]
)  # fmt: skip


def forge(kind: str, body: bytes, noise: bytes) -> str | None:
    valid = sign(SECRET, body)
    return {
        "valid": valid,
        "absent": None,
        "empty": "",
        "random": "sha256=" + noise.hex()[:43] + "=",
        "wrong_secret": sign("not-the-secret", body),
        "other_body": sign(SECRET, body + b" "),
        "uppercase": valid.replace("sha256=", "SHA256="),
        "no_prefix": valid.removeprefix("sha256="),
        "sha1": "sha1=" + valid.removeprefix("sha256="),
    }[kind]


# --- properties --------------------------------------------------------------------------


@FUZZ
@given(
    body=bodies(),
    kind=signature_kinds,
    noise=st.binary(min_size=32, max_size=32),
    content_type=st.sampled_from(["application/json", "application/json; charset=utf-8"]),
)
def test_fuzzed_deliveries_never_5xx_and_only_signed_ones_publish(
    client, body, kind, noise, content_type
):
    before = bus_size()
    response = post(client, body, forge(kind, body, noise), content_type)
    assert response.status_code < 500, response.body
    published = bus_size() - before
    if kind != "valid":
        assert response.status_code == 401
        assert published == 0
    elif response.status_code != 200:
        assert response.status_code in (400, 413)
        assert published == 0


@FUZZ
@given(token=st.text(max_size=300))
def test_fuzzed_crc_tokens_never_5xx_and_never_sign_a_usable_body(client, token):
    response = client.http.get("/twitter?crc_token=" + quote(token, safe=""))
    assert response.status_code in (200, 400)
    if response.status_code != 200:
        assert b"response_token" not in response.body
        return
    answer = json.loads(response.body)["response_token"]
    assert answer == sign(SECRET, token.encode())
    # The CRC oracle: whatever the endpoint signs must be useless as a delivery body.
    before = bus_size()
    replayed = post(client, token.encode(), answer)
    assert replayed.status_code == 400
    assert bus_size() == before


def test_crc_oracle_for_a_forged_delivery_is_refused(client):
    forged = json.dumps({"for_user_id": "1876543210987654321", "tweet_create_events": []})
    response = client.http.get("/twitter?crc_token=" + quote(forged, safe=""))
    assert response.status_code == 400
    assert b"response_token" not in response.body


@pytest.mark.parametrize("query", ["", "?crc_token=", "?crc_token=" + "a" * 129, "?other=1"])
def test_missing_empty_or_long_crc_tokens_are_400(client, query):
    assert client.http.get("/twitter" + query).status_code == 400


# --- signatures --------------------------------------------------------------------------


def test_a_replayed_signed_delivery_is_accepted_but_answers_nothing_new(client):
    signature = sign(SECRET, MENTION)
    first = post(client, MENTION, signature)
    replays = [post(client, MENTION, signature) for _ in range(5)]
    assert first.status_code == 200 and json.loads(first.body)["messages"] == 1
    assert {r.status_code for r in replays} == {200}
    assert {json.loads(r.body)["duplicates"] for r in replays} == {1}
    assert len(messages_on_bus()) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body: body + b"\n",
        lambda body: b" " + body,
        lambda body: body.replace(b"hi! what can you do?", b"hi! what can you say?"),
        lambda body: json.dumps(json.loads(body), indent=1).encode(),  # same JSON, other bytes
    ],
)
def test_a_signature_covers_the_exact_bytes(client, tamper):
    response = post(client, tamper(MENTION), sign(SECRET, MENTION))
    assert response.status_code == 401
    assert bus_size() == 0


def test_a_signature_header_with_surrounding_spaces_is_still_checked(client):
    assert post(client, MENTION, "  " + sign(SECRET, MENTION) + " ").status_code == 200
    assert post(client, MENTION, "  " + sign("x", MENTION) + " ").status_code == 401


# --- size and shape ----------------------------------------------------------------------


def padded(size: int, items: int = 5) -> bytes:
    """A valid delivery of exactly `size` bytes: `items` mentions, the padding spread over
    an ignored key of each, so no one item passes EventBridge's 256 KiB entry limit."""
    skeleton = json.loads(MENTION)
    [tweet] = skeleton["tweet_create_events"]
    tweets = []
    for n in range(items):
        copy = json.loads(json.dumps(tweet))
        copy["id"], copy["id_str"], copy["padding"] = tweet["id"] + n, str(tweet["id"] + n), ""
        tweets.append(copy)
    skeleton["tweet_create_events"] = tweets
    spare = size - len(json.dumps(skeleton).encode())
    for n, copy in enumerate(tweets):
        copy["padding"] = "x" * (spare // items + (1 if n < spare % items else 0))
    body = json.dumps(skeleton).encode()
    assert len(body) == size
    return body


def test_a_body_at_the_limit_is_read_and_one_byte_more_is_413(client):
    at_limit, over = padded(MAX_BODY_BYTES), padded(MAX_BODY_BYTES + 1)
    assert post(client, at_limit, sign(SECRET, at_limit)).status_code == 200
    before = bus_size()
    assert post(client, over, sign(SECRET, over)).status_code == 413
    assert post(client, over, None).status_code == 413  # size is checked before anything
    assert bus_size() == before


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # far past the parser's recursion limit
        b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1),
        b'{"tweet_create_events": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
    ids=["100k-deep", "just-too-deep", "deep-inside-a-known-key"],
)
def test_deeply_nested_json_is_400_not_a_crash(client, body):
    response = post(client, body, sign(SECRET, body))
    assert response.status_code == 400
    assert bus_size() == 0


def test_json_nested_to_the_limit_is_parsed(client):
    inner = b'{"a":' * (MAX_JSON_DEPTH - 2) + b"1" + b"}" * (MAX_JSON_DEPTH - 2)
    body = b'{"for_user_id": "1876543210987654321", "nested": ' + inner + b"}"
    # Parsed (not refused for depth): accepted as an activity of a kind we do not answer.
    response = post(client, body, sign(SECRET, body))
    assert response.status_code == 200, response.body
    assert json.loads(response.body)["messages"] == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        # past int_max_str_digits: json.loads raises a plain ValueError
        (b'{"tweet_create_events": [], "n": ' + b"9" * 5000 + b"}", 400),
        (b'{"tweet_create_events": [], "n": 1e999999}', 400),
        (b'{"tweet_create_events": [], "n": NaN}', 400),
        (b'{"tweet_create_events": [], "s": "\\ud800"}', 200),  # a lone surrogate
    ],
    ids=["5000-digit-int", "huge-exponent", "nan", "lone-surrogate"],
)
def test_odd_numbers_and_strings_never_5xx(client, body, status):
    before = bus_size()
    response = post(client, body, sign(SECRET, body))
    assert response.status_code == status, response.body
    if status == 400:
        assert json.loads(response.body)["error"]  # the reason
        assert bus_size() == before
