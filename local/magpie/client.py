"""`magpie send`: sign a payload with the configured consumer secret and POST it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from chalicelib.errors import InputError, UnavailableError
from chalicelib.ingress.signature import SIGNATURE_HEADER, sign

# `magpie serve`'s port. Not chalice local's 8000, so both can run side by side.
DEFAULT_PORT = 8642
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}/twitter"


class ServerUnreachableError(UnavailableError):
    """Nothing answered at the URL (no server listening, or it timed out)."""


def post_signed(url: str, body: bytes, secret: str, timeout: float = 30.0) -> tuple[int, Any]:
    """POST body with a valid X signature; returns (status, parsed JSON body or text)."""
    if not url.startswith(("http://", "https://")):
        raise InputError(f"not an http(s) URL: {url}")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked)  # nosec B310
            return response.status, _decode(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _decode(exc.read())
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerUnreachableError(
            f"cannot reach {url}: {reason} (is `magpie serve` running there?)"
        ) from exc


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")
