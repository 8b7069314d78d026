from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from chalicelib.ingress import signature


def reference_hmac(secret: str, message: bytes) -> str:
    # Computed independently of the code under test, as X documents it.
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def test_crc_answer_is_the_documented_hmac():
    answer = signature.crc_response("consumer-secret", "token-123")
    assert answer == {"response_token": reference_hmac("consumer-secret", b"token-123")}


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        '{"for_user_id":"1","tweet_create_events":[]}',  # a forged body: the oracle attempt
        "abc def",
        "abc\n",
        'a"b',
        "x" * 129,
        "é",
    ],
)
def test_crc_refuses_anything_but_short_plain_tokens(token):
    with pytest.raises(signature.InvalidCrcToken):
        signature.crc_response("s", token)


def test_verify_accepts_the_right_signature():
    body = b'{"for_user_id":"1"}'
    signature.verify("s", body, reference_hmac("s", body))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=abc",
        "sha256=not-base64!!",
        reference_hmac("other-secret", b"{}"),
        reference_hmac("s", b"{} "),
    ],
)
def test_verify_rejects_missing_malformed_and_wrong_signatures(header):
    with pytest.raises(signature.InvalidSignature):
        signature.verify("s", b"{}", header)
