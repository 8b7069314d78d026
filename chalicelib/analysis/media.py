"""Safe media fetching: every photo of a message, checked, capped, decoded, then stored.

A message's image URLs come from the outside world, so fetching them is an SSRF and
resource-exhaustion risk. The rules, in order:

* the URL must be `https://HOST/...` with HOST exactly on an allow-list (after IDNA
  normalisation, case-insensitive), no IP literal in any form, no userinfo, no port;
* the fetched URL is rebuilt from the checked parts, so the host we checked is byte for
  byte the host `requests` connects to (no parser-disagreement tricks);
* redirects are followed by hand, each Location re-checked with the same rules;
* at most `max_bytes` are read, streamed, with per-read and whole-fetch timeouts;
* the bytes must decode fully as a JPEG, PNG, GIF or WEBP of bounded shape: pixel
  count, each side and aspect ratio are read from the header before any pixel is
  decoded; an animated image is checked and analysed by its first frame only.

Every refusal is a `MediaRejected` with a machine-readable `reason`. `download_media`
records it and carries on with the next URL: a bad image never aborts the text analysis.

Reasons: scheme, malformed, userinfo, port, ip_literal, host_not_allowed,
redirect_not_allowed, too_many_redirects, too_large, timeout, http_status, fetch_error,
not_found, path_traversal, not_an_image, corrupt, truncated, decompression_bomb,
bad_shape, too_many_images.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import struct
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urljoin, urlsplit

from chalicelib.errors import InputError
from chalicelib.media_types import EXTENSION_BY_MIME

logger = logging.getLogger(__name__)

DEFAULT_ALLOWED_HOSTS: frozenset[str] = frozenset({"pbs.twimg.com"})
MAX_BYTES = 5 * 1024 * 1024
TIMEOUT = (3.05, 10)  # (connect, read) seconds, per socket operation
TOTAL_TIMEOUT = 30.0  # seconds for the whole fetch: a server dripping bytes cannot stall us
MAX_REDIRECTS = 3
MAX_PIXELS = 40_000_000
# Photos X serves are at most 4096 px a side; phone panoramas reach about 8:1. Anything
# longer or thinner is not a photo, and thin images are what blow up text recognition
# (a 3000x4 PNG cost 17 GB there), so both are refused from the header.
MAX_SIDE = 16_384
MAX_ASPECT_RATIO = 20
MAX_URL_LENGTH = 2048

_CHUNK = 64 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Pillow format -> MIME type. MPO is how Pillow names JPEGs carrying multi-picture data
# (many phone photos); it is still a JPEG on the wire.
_MIME_BY_FORMAT = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
# Only these decoders ever see untrusted bytes: fewer parsers, smaller attack surface.
_PILLOW_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
# Whitespace, control characters and backslashes have no place in a photo URL, and
# parsers disagree about them (urllib drops tabs, browsers read "\" as "/").
_FORBIDDEN_URL_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f\\\s]")
_HEX_OR_DECIMAL_LABEL = re.compile(r"(?:0[xX][0-9a-fA-F]*|[0-9]+)")


class MediaRejected(InputError):
    """A media URL or its content was refused; `reason` is machine-readable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class BlobWriter(Protocol):
    """The part of `chalicelib.ports.BlobStore` this module uses."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...


# --------------------------------------------------------------------------- URL checks


def check_url(url: str, allowed_hosts: frozenset[str]) -> None:
    """Raise `MediaRejected` unless `url` is https on exactly an allowed host."""
    _canonical_url(url, allowed_hosts)


def _canonical_url(url: str, allowed_hosts: frozenset[str]) -> str:
    """Check `url` and return it rebuilt from the checked parts (fragment dropped)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise MediaRejected("malformed", "empty, not a string or too long")
    if _FORBIDDEN_URL_CHARS.search(url):
        raise MediaRejected("malformed", "whitespace, control character or backslash")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced "[" or NFKC tricks in the netloc
        raise MediaRejected("malformed", str(exc)) from exc
    if parts.scheme != "https":  # urlsplit lower-cases the scheme
        raise MediaRejected("scheme", parts.scheme or "none")
    host = _checked_host(parts.netloc)
    if host not in {_normalise_host(h) for h in allowed_hosts}:
        raise MediaRejected("host_not_allowed", host)
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    return f"https://{host}{path}{query}"


def _checked_host(netloc: str) -> str:
    """The normalised host of an authority that has no userinfo, port or IP literal."""
    if "@" in netloc:
        raise MediaRejected("userinfo")
    # Brackets or several colons can only be an IPv6 literal; test before the port rule
    # so the reason says what the URL really is.
    if netloc.startswith("[") or netloc.count(":") > 1:
        raise MediaRejected("ip_literal", "IPv6")
    if ":" in netloc:
        raise MediaRejected("port")
    if not netloc or "%" in netloc:
        raise MediaRejected("malformed", "missing or percent-encoded host")
    host = _normalise_host(netloc)
    if _is_ipv4_literal(host):
        raise MediaRejected("ip_literal", host)
    return host


def _normalise_host(host: str) -> str:
    """IDNA (UTS #46, as `requests` does) then lower case: 'ＰＢＳ.twimg.com' -> 'pbs.twimg.com'."""
    import idna  # a dependency of requests; imported lazily like requests itself

    try:
        return idna.encode(host, uts46=True, std3_rules=True).decode("ascii").lower()
    except idna.IDNAError as exc:
        raise MediaRejected("malformed", f"host is not a valid IDNA name: {exc}") from exc


def _is_ipv4_literal(host: str) -> bool:
    """WHATWG URL rule: a host whose last label is a number is an IPv4 address.

    That covers what inet_aton and browsers accept: 1.2.3.4, 127.1, 2130706433,
    0x7f.0.0.1, 017700000001 (octal). Such hosts are refused even when out of range.
    """
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()  # a trailing dot does not change the address
    return bool(_HEX_OR_DECIMAL_LABEL.fullmatch(labels[-1]))


# --------------------------------------------------------------------------- fetching


def fetch_image(
    url: str,
    *,
    allowed_hosts: frozenset[str],
    max_bytes: int = MAX_BYTES,
    timeout: tuple[float, float] = TIMEOUT,
    max_redirects: int = MAX_REDIRECTS,
    mirror_dir: Path | None = None,
    session: Any = None,
    total_timeout: float = TOTAL_TIMEOUT,
) -> tuple[bytes, str]:
    """Fetch one image safely. Returns (bytes, MIME type detected by Pillow).

    With `mirror_dir`, https://HOST/PATH is read from mirror_dir/HOST/PATH instead of the
    network (offline local mode); the same URL checks apply first.
    Raises `MediaRejected`.
    """
    checked = _canonical_url(url, allowed_hosts)
    if mirror_dir is not None:
        data = _read_mirror(checked, Path(mirror_dir), max_bytes)
    else:
        data = _download(
            checked,
            allowed_hosts=allowed_hosts,
            max_bytes=max_bytes,
            timeout=timeout,
            max_redirects=max_redirects,
            session=session,
            deadline=time.monotonic() + total_timeout,
        )
    return data, validate_image(data)


def _download(
    url: str,
    *,
    allowed_hosts: frozenset[str],
    max_bytes: int,
    timeout: tuple[float, float],
    max_redirects: int,
    session: Any,
    deadline: float,
) -> bytes:
    import requests

    own_session = session is None
    http = requests.Session() if own_session else session
    try:
        for _hop in range(max_redirects + 1):
            response = _get(http, url, timeout)
            with response:
                if response.status_code in _REDIRECT_STATUSES:
                    url = _next_location(url, response, allowed_hosts)
                    continue
                if response.status_code != 200:
                    raise MediaRejected("http_status", str(response.status_code))
                return _read_capped(response, max_bytes, deadline)
        raise MediaRejected("too_many_redirects", f"more than {max_redirects}")
    finally:
        if own_session:
            http.close()


def _get(http: Any, url: str, timeout: tuple[float, float]) -> Any:
    import requests

    try:
        return http.get(
            url,
            stream=True,
            allow_redirects=False,  # every hop is re-checked by _next_location
            timeout=timeout,
            # identity: Content-Length is then the real size and no gzip bomb is inflated
            headers={"Accept": "image/*", "Accept-Encoding": "identity"},
        )
    except requests.Timeout as exc:
        raise MediaRejected("timeout", type(exc).__name__) from exc
    except requests.RequestException as exc:
        raise MediaRejected("fetch_error", type(exc).__name__) from exc


def _next_location(current: str, response: Any, allowed_hosts: frozenset[str]) -> str:
    location = response.headers.get("Location")
    if not location:
        raise MediaRejected("http_status", f"{response.status_code} without Location")
    try:
        return _canonical_url(urljoin(current, location), allowed_hosts)
    except MediaRejected as exc:
        raise MediaRejected("redirect_not_allowed", exc.reason) from exc


def _read_capped(response: Any, max_bytes: int, deadline: float) -> bytes:
    import requests

    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise MediaRejected("too_large", f"Content-Length {declared}")
    body = bytearray()
    try:
        for chunk in response.iter_content(chunk_size=_CHUNK):
            body += chunk
            if len(body) > max_bytes:
                raise MediaRejected("too_large", f"more than {max_bytes} bytes")
            if time.monotonic() > deadline:
                raise MediaRejected("timeout", "whole-fetch deadline passed")
    except requests.RequestException as exc:
        # requests reports a read timeout while streaming as a ConnectionError wrapping
        # urllib3's ReadTimeoutError, so look at the cause too.
        if _is_timeout(exc):
            raise MediaRejected("timeout", "while streaming") from exc
        raise MediaRejected("fetch_error", type(exc).__name__) from exc
    return bytes(body)


def _is_timeout(exc: BaseException) -> bool:
    import requests

    if isinstance(exc, (requests.Timeout, TimeoutError)):
        return True
    return any(
        isinstance(arg, BaseException) and "Timeout" in type(arg).__name__ for arg in exc.args
    )


def _read_mirror(url: str, mirror_dir: Path, max_bytes: int) -> bytes:
    """Read a checked https URL from mirror_dir/HOST/PATH, never from outside that folder."""
    parts = urlsplit(url)
    root = (mirror_dir / parts.hostname).resolve() if parts.hostname else None
    relative = unquote(parts.path).lstrip("/")
    if root is None or not relative or "\x00" in relative:
        raise MediaRejected("not_found", "empty path")
    # resolve() follows symlinks and "..", so containment is checked on the real target.
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        raise MediaRejected("path_traversal", parts.path[:200])
    if not target.is_file():
        raise MediaRejected("not_found", parts.path[:200])
    if target.stat().st_size > max_bytes:
        raise MediaRejected("too_large", f"more than {max_bytes} bytes")
    with target.open("rb") as handle:
        data = handle.read(max_bytes + 1)  # the file may grow between stat and read
    if len(data) > max_bytes:
        raise MediaRejected("too_large", f"more than {max_bytes} bytes")
    return data


# --------------------------------------------------------------------------- decoding


def validate_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> str:
    """Return the MIME type of `data` if it fully decodes as JPEG/PNG/GIF/WEBP.

    Decompression bombs: the header size is checked against `max_pixels` before any pixel
    is decoded. Pillow's own process-wide guard (`Image.MAX_IMAGE_PIXELS`, ~89 Mpx) is left
    untouched, because changing it would leak into every other caller in the process; when
    it fires first (DecompressionBombError, or the Warning under `-W error`) it maps to the
    same rejection. Truncated files fail because LOAD_TRUNCATED_IMAGES stays False.
    """
    from PIL import Image, UnidentifiedImageError

    bomb_errors = (Image.DecompressionBombError, Image.DecompressionBombWarning)
    if not data:
        raise MediaRejected("not_an_image", "empty")
    webp_size = webp_canvas_size(data)
    if webp_size is not None:
        # libwebp allocates the whole canvas when Pillow merely opens the file, so the
        # size must be known before Pillow sees a WEBP.
        _check_shape(webp_size, max_pixels)
    try:
        with Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS) as image:
            mime = _MIME_BY_FORMAT.get(image.format or "")
            _check_shape(image.size, max_pixels)
            image.verify()  # structural checks (PNG CRCs); leaves the image unusable
        # verify() cannot decode, so decode the first frame for real on a fresh open.
        with Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS) as image:
            image.load()
    except MediaRejected:  # an InputError, hence a ValueError: keep its own reason
        raise
    except bomb_errors as exc:
        raise MediaRejected("decompression_bomb", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise MediaRejected("not_an_image", "not a JPEG, PNG, GIF or WEBP") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError) as exc:
        raise _decode_failure(exc) from exc
    if mime is None:
        raise MediaRejected("not_an_image", "unsupported format")
    return mime


def _check_shape(size: tuple[int, int], max_pixels: int) -> None:
    problem = shape_problem(*size, max_pixels=max_pixels)
    if problem is not None:
        raise MediaRejected(*problem)


def shape_problem(
    width: int, height: int, *, max_pixels: int = MAX_PIXELS
) -> tuple[str, str] | None:
    """(reason, detail) if an image of this header size must not be decoded, else None."""
    if width * height > max_pixels:
        return "decompression_bomb", f"{width}x{height} pixels, limit {max_pixels}"
    if min(width, height) < 1 or max(width, height) > MAX_SIDE:
        return "bad_shape", f"{width}x{height}: each side must be 1 to {MAX_SIDE} px"
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        return "bad_shape", f"{width}x{height}: longer than {MAX_ASPECT_RATIO}:1"
    return None


def webp_canvas_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a WEBP header, or None if `data` is not a WEBP we can size.

    Layouts from the WebP container spec: VP8X holds the canvas size (24-bit, minus one),
    VP8L 14-bit sizes minus one, VP8 (lossy) 14-bit sizes after the 9d 01 2a start code.
    A WEBP we cannot size is left to Pillow, which then rejects it as malformed.
    """
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
        return width, height
    return None


def _decode_failure(exc: BaseException) -> MediaRejected:
    message = str(exc).lower()
    if isinstance(exc, EOFError) or "truncated" in message or "premature end" in message:
        return MediaRejected("truncated", str(exc)[:200])
    return MediaRejected("corrupt", f"{type(exc).__name__}: {str(exc)[:200]}")


# --------------------------------------------------------------------------- storing


def media_key(message_id: str, index: int, received_at: str | None, ext: str, *, kind: str) -> str:
    """'media/YYYY/MM/DD/<message part>/<index>.<ext>', dated by `received_at` (UTC).

    The message part is unique per (kind, message id) and never empty: a mention's id of
    letters and digits (all X sends) is itself; a direct message's gets a `dm-` prefix; an id
    with anything else (`12-3`, `---`) keeps its letters and digits followed by a digest of
    the kind and the whole id, so `12-3` and `123` never share a key and `---` has one.
    An absent or unparsable `received_at` falls back to today (UTC), so a bad timestamp
    never costs the image. Raises ValueError for an extension with no usable characters or
    a negative index (the caller's mistakes, never the message's).
    """
    safe_ext = re.sub(r"[^a-z0-9]", "", ext.lower())[:8]
    if not safe_ext or index < 0:
        raise ValueError("media_key needs an extension and an index >= 0")
    day = _received_day(received_at)
    return f"media/{day:%Y/%m/%d}/{_message_part(kind, message_id)}/{index}.{safe_ext}"


def _message_part(kind: str, message_id: str) -> str:
    safe_id = re.sub(r"[^A-Za-z0-9]", "", message_id)[:64]
    prefix = "" if kind == "MENTION" else ("dm-" if kind == "DIRECT_MESSAGE" else "k-")
    if safe_id and safe_id == message_id and prefix != "k-":
        return prefix + safe_id
    digest = hashlib.sha256(f"{kind}\n{message_id}".encode()).hexdigest()[:16]
    return f"{prefix}{safe_id or 'id'}-{digest}"


def _received_day(received_at: str | None) -> datetime:
    if received_at:
        try:
            moment = datetime.fromisoformat(received_at)
        except ValueError:
            logger.warning("unparsable received_at; dating media by today's date instead")
        else:
            if moment.tzinfo is None:  # our timestamps are UTC; a naive one is too
                return moment
            return moment.astimezone(UTC)
    return datetime.now(UTC)


def download_media(
    urls: Sequence[str],
    message_id: str,
    received_at: str | None,
    blob_store: BlobWriter,
    *,
    kind: str,
    allowed_hosts: frozenset[str] = DEFAULT_ALLOWED_HOSTS,
    mirror_dir: Path | None = None,
    max_images: int = 4,
    fetch: Callable[..., tuple[bytes, str]] = fetch_image,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Fetch and store each photo; returns (stored, rejected).

    stored: [{"Url", "Key", "ContentType", "Bytes"}]; rejected: [{"Url", "Reason"}].
    Each URL is handled on its own: a rejection is recorded and the next URL is tried.
    Blob store failures are not rejections and propagate, so the step can be retried.
    Keys use the URL's position in `urls`, so they stay stable across retries.
    """
    stored: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for index, url in enumerate(urls):
        if index >= max_images:
            rejected.append({"Url": url, "Reason": "too_many_images"})
            continue
        try:
            data, content_type = fetch(url, allowed_hosts=allowed_hosts, mirror_dir=mirror_dir)
        except MediaRejected as exc:
            logger.info("media %d of message %s rejected: %s", index, message_id, exc.reason)
            rejected.append({"Url": url, "Reason": exc.reason})
            continue
        key = media_key(message_id, index, received_at, EXTENSION_BY_MIME[content_type], kind=kind)
        blob_store.put(key, data, content_type)
        stored.append({"Url": url, "Key": key, "ContentType": content_type, "Bytes": len(data)})
    return stored, rejected
