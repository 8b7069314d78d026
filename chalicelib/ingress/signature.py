"""X webhook security: the CRC challenge answer and the POST signature check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from chalicelib.errors import InputError

SIGNATURE_HEADER = "x-twitter-webhooks-signature"
SIGNATURE_PREFIX = "sha256="

# X sends short opaque tokens. Signing anything else would turn the CRC endpoint into an
# oracle that signs forged POST bodies (the reference signed any token).
_CRC_TOKEN = re.compile(r"[A-Za-z0-9_\-.~+/=]{1,128}")
_SIGNATURE = re.compile(r"sha256=[A-Za-z0-9+/]{43}=")


class InvalidCrcToken(InputError):
    pass


class InvalidSignature(InputError):
    pass


def sign(secret: str, message: bytes) -> str:
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return SIGNATURE_PREFIX + base64.b64encode(digest).decode()


def crc_response(secret: str, token: str | None) -> dict[str, str]:
    """The answer to GET ?crc_token=T: {"response_token": "sha256=<b64 HMAC(secret, T)>"}."""
    if token is None or not _CRC_TOKEN.fullmatch(token) or _looks_like_json(token):
        raise InvalidCrcToken("crc_token must be 1-128 plain token characters")
    return {"response_token": sign(secret, token.encode())}


def _looks_like_json(token: str) -> bool:
    # Plain-token characters already exclude braces and quotes; this is belt and braces.
    return token[:1] in '{["'


def verify(secret: str, raw_body: bytes, header_value: str | None) -> None:
    """Raise InvalidSignature unless header_value is the body's HMAC; constant-time compare."""
    if not header_value or not _SIGNATURE.fullmatch(header_value.strip()):
        raise InvalidSignature("missing or malformed signature header")
    expected = sign(secret, raw_body)
    if not hmac.compare_digest(expected.encode(), header_value.strip().encode()):
        raise InvalidSignature("signature does not match the body")
