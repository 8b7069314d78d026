"""The image types Magpie handles: their file extensions, and recognising one from its bytes.

One place for what media download, the image responder, egress and the dry-run outbox all
need to agree on.
"""

from __future__ import annotations

EXTENSION_BY_MIME = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
}

_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
)


def sniff(data: bytes) -> str | None:
    """The MIME type of a JPEG, PNG, GIF or WebP from its first bytes; None otherwise."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
