"""Hostile images through a real `magpie serve`: what each costs, and the peak memory.

`python -m bench.hostile_images` writes bench/results/hostile_images.json.

`magpie serve` runs as the operator runs it (a subprocess, local models, a media mirror);
one signed mention per image is POSTed, and the run waits until each message is analysed.
Meanwhile the resident memory of the server and of its model worker is sampled every
50 ms; each process's own high-water mark (VmHWM) is read at the end as well. The images:
  - refused at download (thin 3000x4, long 1x39,000,000, a 30000x30000 decompression bomb);
  - accepted and analysed (a 20:1 banner, an animated GIF, a 1600x1600 page of text,
    a 6000x6000 photo-sized JPEG, the bundled photo of a known face).
Figures, not a test: the target is a server under 1.5 GB with the models loaded.
"""

from __future__ import annotations

import copy
import io
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-hostile-secret"  # noqa: S105 (made up)
BOT = "1876543210987654321"
TARGET_RSS_MB = 1536


def _png(header: bytes, idat: bytes) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def png_of_shape(width: int, height: int) -> bytes:
    """A real, fully decodable 1-bit white PNG of any size, compressed row block by row
    block: Pillow would need the whole image in memory to write a 1x39,000,000 one."""
    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter byte, then white pixels
    squeeze = zlib.compressobj(9)
    per_block = max(1, 1_000_000 // len(row))
    data = bytearray()
    for start in range(0, height, per_block):
        data += squeeze.compress(row * min(per_block, height - start))
    data += squeeze.flush()
    return _png(struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0), bytes(data))


def bomb(width: int, height: int) -> bytes:
    """A PNG header claiming width x height over a few bytes of data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return _png(header, zlib.compress(b"\x00" * 49))


def images() -> dict[str, bytes]:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=48)

    def text_on(size: tuple[int, int], text: str) -> Image.Image:
        image = Image.new("RGB", size, "white")
        draw = ImageDraw.Draw(image)
        for y in range(20, size[1] - 60, 120):
            draw.text((20, y), text, fill="black", font=font)
        return image

    def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        return buffer.getvalue()

    frames = [text_on((480, 200), word) for word in ("FIRST", "SECOND", "THIRD")]
    return {
        "thin-3000x4.png": png_of_shape(3000, 4),
        "long-1x39000000.png": png_of_shape(1, 39_000_000),
        "bomb-30000x30000.png": bomb(30_000, 30_000),
        "banner-2000x100.png": encoded(text_on((2000, 100), "MAGPIE"), "PNG"),
        "animated.gif": encoded(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "text-1600x1600.png": encoded(text_on((1600, 1600), "THE QUICK BROWN FOX"), "PNG"),
        "photo-6000x6000.jpg": encoded(text_on((6000, 6000), "BIG"), "JPEG", quality=70),
        "astronaut.jpg": (ROOT / "examples/known-faces/eileen-collins.jpg").read_bytes()
        if (ROOT / "examples/known-faces/eileen-collins.jpg").exists()
        else encoded(text_on((800, 600), "PORTRAIT"), "JPEG"),
    }


def mention(n: int, url: str) -> bytes:
    template = json.loads((ROOT / "examples/webhooks/mention-two-photos.json").read_text())
    payload = copy.deepcopy(template)
    tweet = payload["tweet_create_events"][0]
    tweet["id"], tweet["id_str"] = 7_000_000 + n, str(7_000_000 + n)
    media = copy.deepcopy(tweet["extended_entities"]["media"][0])
    media["media_url_https"] = url
    media["media_url"] = url.replace("https:", "http:")
    tweet["extended_entities"]["media"] = [media]
    tweet["entities"]["media"] = [media]
    return json.dumps(payload).encode()


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # the thread ended between the listing and the read
            continue
    return found


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = {"server_kb": 0, "worker_kb": 0, "together_kb": 0}
        self.hwm: dict[int, int] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            server = rss_kb(self.pid)
            workers = children(self.pid)
            worker = sum(rss_kb(child) for child in workers)
            for child in [self.pid, *workers]:
                self.hwm[child] = max(self.hwm.get(child, 0), rss_kb(child, "VmHWM"))
            self.peak["server_kb"] = max(self.peak["server_kb"], server)
            self.peak["worker_kb"] = max(self.peak["worker_kb"], worker)
            self.peak["together_kb"] = max(self.peak["together_kb"], server + worker)
            time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def analysed(home: Path) -> dict[str, dict[str, Any]]:
    """MESSAGE_ANALYSED details by message id, from the lake."""
    found = {}
    for path in (home / "lake").rglob("*.json"):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("detail-type") == "MESSAGE_ANALYSED":
                found[record["detail"]["MessageId"]] = record["detail"]
    return found


def main() -> dict[str, Any]:
    sys.path[:0] = [str(ROOT), str(ROOT / "local")]
    from magpie.client import post_signed

    scratch = Path(tempfile.mkdtemp(prefix="magpie-hostile-"))
    home, mirror = scratch / "home", scratch / "mirror"
    (mirror / "pbs.twimg.com" / "media").mkdir(parents=True)
    made = images()
    for name, data in made.items():
        (mirror / "pbs.twimg.com" / "media" / name).write_bytes(data)
    port = free_port()
    env = {
        **os.environ,
        "MAGPIE_HOME": str(home),
        "MAGPIE_MEDIA_MIRROR": str(mirror),
        "TWITTER_BOT_USER_ID": BOT,
        "TWITTER_API_SECRET": SECRET,
        "MAGPIE_BACKEND": "local",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "local")]),
    }
    server = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "magpie.cli", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    sampler = Sampler(server.pid)
    sampler.start()
    results: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/twitter"
        for n, name in enumerate(made):
            started = time.monotonic()
            status, _ = post_signed(url, mention(n, f"https://pbs.twimg.com/media/{name}"), SECRET)
            message_id = str(7_000_000 + n)
            detail = None
            while time.monotonic() - started < 300 and detail is None:
                detail = analysed(home).get(message_id)
                time.sleep(0.1)
            analysis = (detail or {}).get("Analysis", {})
            results[name] = {
                "bytes": len(made[name]),
                "webhook_status": status,
                "seconds_to_analysed": round(time.monotonic() - started, 2),
                "rejected": [r["Reason"] for r in analysis.get("RejectedMedia", [])],
                "errors": [
                    f"{e['Capability']}: {e['Error'][:120]}" for e in analysis.get("Errors", [])
                ],
                "text": [
                    t["DetectedText"]
                    for image in analysis.get("Images", [])
                    for t in image["Analysis"]["TextDetections"]
                ][:3],
                "server_alive": server.poll() is None,
            }
    finally:
        sampler.done.set()
        sampler.join()
        server.terminate()
        server.wait(timeout=60)
    mb = {key: round(value / 1024) for key, value in sampler.peak.items()}
    figures = {
        "images": results,
        "peak_rss_mb": mb,
        "high_water_mb": {str(pid): round(kb / 1024) for pid, kb in sampler.hwm.items()},
        "target_mb": TARGET_RSS_MB,
        "within_target": mb["together_kb"] <= TARGET_RSS_MB,
    }
    out = ROOT / "bench" / "results" / "hostile_images.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
