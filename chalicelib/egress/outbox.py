"""The local dry-run `Poster`: replies become files instead of posts.

Each reply is one JSON file `<root>/<UTC timestamp>-<replied-to id>-<short id>.json`; its
images are written first under `<root>/media/`, so a reply file never points at a missing
image. Every file is written to a temporary name and renamed, so a reader (the CLI, a test)
never sees half a file. `root` is the outbox directory itself, e.g. `MAGPIE_HOME/outbox`.

It is also where egress looks a reply up after a crash (`find_reply`): the reply an attempt
wrote before its process died is found there, so the next attempt does not write another.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.egress.content import outgoing_images, outgoing_text
from chalicelib.media_types import EXTENSION_BY_MIME
from chalicelib.ports import PostResult, ReplyRequest

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class DryRunOutbox:
    """Implements `Poster` for local mode: writes what would be sent, sends nothing."""

    def __init__(self, root: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._root = Path(root)
        self._clock = clock

    def post(self, request: ReplyRequest) -> PostResult:
        token = uuid.uuid4().hex
        sent_id = f"dryrun-{token}"
        now = datetime.fromtimestamp(self._clock(), tz=UTC)
        images = self._write_images(token, outgoing_images(request))
        record = {
            "sent_id": sent_id,
            "dry_run": True,
            "kind": request.kind,
            "text": outgoing_text(request),
            "reply_to_user_id": request.reply_to_user_id,
            "reply_to_tweet_id": request.reply_to_tweet_id,
            "images": images,
            "written_at": now.strftime(TIME_FORMAT),
        }
        replied_to = _safe(request.reply_to_tweet_id or request.reply_to_user_id)
        name = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{replied_to}-{token[:8]}.json"
        path = self._root / name
        payload = json.dumps(record, ensure_ascii=False, indent=2) + "\n"
        _write_atomically(path, payload.encode("utf-8"))
        log.info("dry run: %s reply to %s written to %s", request.kind, replied_to, path)
        media_ids = [f"dryrun-media-{token}-{i}" for i in range(len(images))]
        return PostResult(sent_id=sent_id, media_ids=media_ids, dry_run=True, location=str(path))

    def find_reply(self, request: ReplyRequest, since: float) -> PostResult | None:
        """The reply to `request` written at or after `since` (epoch seconds), if any: same
        kind, same post and user replied to; one with the same text first. The text is not
        required: a redelivered message may have been answered with another joke, and
        posting it too would answer twice."""
        replied_to = _safe(request.reply_to_tweet_id or request.reply_to_user_id)
        text = outgoing_text(request)
        found = []
        for path in sorted(self._root.glob(f"*-{replied_to}-*.json")):
            record = json.loads(path.read_text(encoding="utf-8"))
            written = datetime.strptime(record["written_at"], TIME_FORMAT).replace(tzinfo=UTC)
            if (
                record.get("kind") == request.kind
                and record.get("reply_to_user_id") == request.reply_to_user_id
                and record.get("reply_to_tweet_id") == request.reply_to_tweet_id
                and written.timestamp() >= since
            ):
                found.append((record.get("text") != text, path, record))
        if not found:
            return None
        _, path, record = min(found, key=lambda item: item[0])
        token = record["sent_id"].removeprefix("dryrun-")
        media_ids = [f"dryrun-media-{token}-{i}" for i in range(len(record["images"]))]
        return PostResult(record["sent_id"], media_ids, dry_run=True, location=str(path))

    def _write_images(self, token: str, images: list[tuple[bytes, str]]) -> list[dict[str, Any]]:
        written = []
        for index, (data, media_type) in enumerate(images):
            extension = EXTENSION_BY_MIME.get(media_type, "bin")
            path = self._root / "media" / f"{token}-{index}.{extension}"
            _write_atomically(path, data)
            written.append({"path": str(path), "media_type": media_type, "bytes": len(data)})
        return written


def _safe(identifier: str) -> str:
    """An id fit for a file name (X ids are digits; anything else is neutralised)."""
    return _UNSAFE.sub("_", identifier)[:64] or "unknown"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        # Leave no temporary file behind, then let the failure propagate.
        Path(tmp_name).unlink(missing_ok=True)
        raise
