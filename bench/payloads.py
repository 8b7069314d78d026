"""The corpus as X would deliver it: signed Account Activity webhook bodies, and its photos.

`delivery(messages)` builds one webhook body holding the given corpus messages (one
`tweet_create_events` or `direct_message_events` item each). `scene_jpeg(scene)` draws a
scene's photo from pictures that ship inside installed packages (scikit-image, matplotlib)
at the size X serves (1200 px on the long side), once per process.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
from pathlib import Path
from typing import Any

from bench.make_corpus import BOT_SCREEN_NAME, BOT_USER_ID, MESSAGES_FILE, SCENES_FILE

MEDIA_HOST = "pbs.twimg.com"
PHOTO_LONG_SIDE = 1200


@functools.cache
def corpus() -> dict[str, Any]:
    return json.loads(MESSAGES_FILE.read_text(encoding="utf-8"))


@functools.cache
def scenes() -> dict[str, Any]:
    return json.loads(SCENES_FILE.read_text(encoding="utf-8"))["scenes"]


def messages() -> list[dict[str, Any]]:
    return corpus()["messages"]


PHOTO_NAME = re.compile(r"bench-([a-z_]+)-(\d+)\.jpg")


def photo_url(image: dict[str, Any]) -> str:
    """The photo's URL: one per posted photo (X never repeats one); the bytes are the scene's."""
    return f"https://{MEDIA_HOST}/media/bench-{image['scene']}-{image['media_id']}.jpg"


def scene_of_url(url: str) -> str:
    match = PHOTO_NAME.search(url)
    if match is None:
        raise ValueError(f"not a corpus photo URL: {url}")
    return match.group(1)


def _created_at(timestamp_ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).strftime(
        "%a %b %d %H:%M:%S +0000 %Y"
    )


def _user(author: dict[str, str]) -> dict[str, Any]:
    return {
        "id": int(author["id"]),
        "id_str": author["id"],
        "name": author["screen_name"].replace("_", " ").title(),
        "screen_name": author["screen_name"],
        "protected": False,
        "verified": False,
        "followers_count": 97,
        "friends_count": 180,
        "lang": None,
    }


def _media(image: dict[str, Any], tweet_id: str, screen_name: str) -> dict[str, Any]:
    url = photo_url(image)
    return {
        "id": int(image["media_id"]),
        "id_str": image["media_id"],
        "media_url": url.replace("https://", "http://"),
        "media_url_https": url,
        "url": "https://t.co/BenchPhoto",
        "display_url": "pic.x.com/BenchPhoto",
        "expanded_url": f"https://x.com/{screen_name}/status/{tweet_id}/photo/1",
        "type": "photo",
        "sizes": {"large": {"w": 1200, "h": 900, "resize": "fit"}},
    }


def tweet_item(message: dict[str, Any]) -> dict[str, Any]:
    author = message["author"]
    media = [_media(i, message["id"], author["screen_name"]) for i in message["images"]]
    text = message["text"] + (" https://t.co/BenchPhoto" if media else "")
    tweet: dict[str, Any] = {
        "created_at": _created_at(message["timestamp_ms"]),
        "id": int(message["id"]),
        "id_str": message["id"],
        "text": text,
        "truncated": False,
        "in_reply_to_status_id": None,
        "in_reply_to_status_id_str": None,
        "in_reply_to_user_id": None,
        "in_reply_to_user_id_str": None,
        "user": _user(author),
        "is_quote_status": False,
        "entities": {
            "hashtags": [],
            "urls": [],
            "symbols": [],
            "user_mentions": [
                {
                    "screen_name": BOT_SCREEN_NAME,
                    "name": "Acme Helper Bot",
                    "id": int(BOT_USER_ID),
                    "id_str": BOT_USER_ID,
                    "indices": [0, len(BOT_SCREEN_NAME) + 1],
                }
            ],
        },
        "lang": message["lang"],
        "timestamp_ms": str(message["timestamp_ms"]),
    }
    if media:
        tweet["entities"]["media"] = media[:1]
        tweet["extended_entities"] = {"media": media}
    return tweet


def dm_item(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message_create",
        "id": message["id"],
        "created_timestamp": str(message["timestamp_ms"]),
        "message_create": {
            "target": {"recipient_id": BOT_USER_ID},
            "sender_id": message["author"]["id"],
            "source_app_id": "3033300",
            "message_data": {"text": message["text"], "entities": {"urls": []}},
        },
    }


def delivery(batch: list[dict[str, Any]]) -> bytes:
    """One Account Activity webhook body with every message of `batch`."""
    tweets = [tweet_item(m) for m in batch if m["kind"] == "MENTION"]
    dms = [dm_item(m) for m in batch if m["kind"] == "DIRECT_MESSAGE"]
    body: dict[str, Any] = {"for_user_id": BOT_USER_ID}
    if tweets:
        body["tweet_create_events"] = tweets
    if dms:
        body["direct_message_events"] = dms
        body["users"] = {
            m["author"]["id"]: _user(m["author"]) for m in batch if m["kind"] == "DIRECT_MESSAGE"
        }
    return json.dumps(body, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- photos


def _source_picture(source: str) -> Any:
    from PIL import Image, ImageDraw, ImageFont

    if source.startswith("text:"):
        lines = source.removeprefix("text:").split("|")
        image = Image.new("RGB", (640, 480), "white")
        draw = ImageDraw.Draw(image)
        font = ImageFont.load_default(size=56)
        for row, line in enumerate(lines):
            draw.text((40, 120 + row * 110), line, fill="black", font=font)
        return image
    if source == "grace_hopper":
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        with Image.open(path) as photo:
            return photo.convert("RGB")
    if source == "group":
        left, right = _source_picture("astronaut"), _source_picture("grace_hopper")
        height = max(left.height, right.height)
        canvas = Image.new("RGB", (left.width + right.width, height), "grey")
        canvas.paste(left, (0, 0))
        canvas.paste(right, (left.width, 0))
        return canvas
    from skimage import data

    array = getattr(data, source)()
    return Image.fromarray(array).convert("RGB")


@functools.cache
def scene_jpeg(scene: str) -> bytes:
    """The scene's photo as a JPEG, 1200 px on its long side (as X serves photos)."""
    from PIL import Image

    picture = _source_picture(scenes()[scene]["source"])
    scale = PHOTO_LONG_SIDE / max(picture.size)
    size = (round(picture.width * scale), round(picture.height * scale))
    picture = picture.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def write_media_mirror(root: Path, batch: list[dict[str, Any]] | None = None) -> Path:
    """Every photo of `batch` (default: the corpus) under root/pbs.twimg.com/media/, for
    MAGPIE_MEDIA_MIRROR: one file per scene, hard-linked under each photo's name."""
    folder = root / MEDIA_HOST / "media"
    folder.mkdir(parents=True, exist_ok=True)
    originals = folder / "scenes"
    originals.mkdir(exist_ok=True)
    for scene in scenes():
        (originals / f"{scene}.jpg").write_bytes(scene_jpeg(scene))
    for message in batch if batch is not None else messages():
        for image in message["images"]:
            target = folder / photo_url(image).rsplit("/", 1)[1]
            if not target.exists():
                os.link(originals / f"{image['scene']}.jpg", target)
    return root
