"""`magpie demo`: the whole local stack, every bundled webhook sample, what each one produced."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

from chalicelib.alert_sinks import LocalAlertSink
from chalicelib.alerts import summary
from magpie.apps import ROOT
from magpie.client import post_signed
from magpie.describe import describe
from magpie.runtime import Runtime, configure_environment
from magpie.server import BackgroundServer

SAMPLES = ROOT / "examples" / "webhooks"
MEDIA_MIRROR = ROOT / "examples" / "media-mirror"
KNOWN_FACES = ROOT / "examples" / "known-faces"
DEMO_BOT_USER_ID = "1876543210987654321"  # the bot of the bundled (made-up) samples


def _quiet_alerts() -> None:
    """The demo prints alerts under their delivery, so the sink's own console line is muted."""
    from chalicelib import backend
    from chalicelib.alert_sinks import LocalAlertSink

    sink = backend.alert_sink()
    assert isinstance(sink, LocalAlertSink)  # the demo runs the local backend only
    sink.mute_console()


def run_demo(home: Path, out: TextIO | None = None, samples: Path = SAMPLES) -> int:
    """Run every sample through a fresh local stack; returns a process exit code."""
    out = out or sys.stdout  # looked up now: whoever replaced sys.stdout meanwhile gets it
    from chalicelib.secrets import ensure_local_secret

    if home.exists():
        shutil.rmtree(home)  # a fresh home: otherwise every sample is a known duplicate
    overrides = {"TWITTER_BOT_USER_ID": DEMO_BOT_USER_ID}
    if MEDIA_MIRROR.is_dir():
        overrides["MAGPIE_MEDIA_MIRROR"] = str(MEDIA_MIRROR)
    configure_environment(home, **overrides)
    secret = ensure_local_secret(home).api_secret
    enrol_known_faces(out)
    _quiet_alerts()
    files = sorted(samples.glob("*.json"))
    alert_sink = LocalAlertSink(home / "alerts.jsonl")
    outbox = home / "outbox"
    failures = 0
    with Runtime(home) as runtime, BackgroundServer() as server:
        print(f"Magpie local stack: webhook {server.url}, home {home}", file=out)
        print(f"Targets on the local bus: {', '.join(runtime.target_names)}\n", file=out)
        for path in files:
            before = runtime.store.last_seq()
            alerts_before = len(alert_sink.read())
            outbox_before = set(outbox.glob("*.json"))
            status, body = post_signed(server.url, path.read_bytes(), secret)
            idle = runtime.wait_idle(timeout=180)
            produced = [env for _, env in runtime.store.events_since(before)]
            failures += status != 200 or not idle
            print(f"== {path.name}: HTTP {status} {_counts(body)}", file=out)
            for envelope in produced:
                print(f"   {describe(envelope)}", file=out)
            for reply in sorted(set(outbox.glob("*.json")) - outbox_before):
                print(f"   {describe_reply(reply)}", file=out)
            for alert in alert_sink.read()[alerts_before:]:
                print(f"   ALERT {summary(alert)}", file=out)
            if not idle:
                print("   (still busy after 180 s)", file=out)
            print(file=out)
        dead = runtime.store.dead_letters()
    print(
        f"{len(files)} deliveries, {len(dead)} dead letters; lake under {home / 'lake'}", file=out
    )
    for letter in dead:
        print(
            f"   dead letter: {letter.target} on {letter.detail_type}: {letter.last_error}",
            file=out,
        )
    print(file=out)
    for line in next_steps(home):
        print(line, file=out)
    return 1 if failures or dead else 0


def next_steps(home: Path) -> list[str]:
    """What to type next to look at the demo's data: each command names the demo's home."""
    magpie = f"magpie --home {shlex.quote(str(home))}"
    return [
        f"The demo's data is in {home}. Look at it with:",
        f"  {magpie} stats",
        f"  {magpie} report --list",
        f"  {magpie} ledger",
        f"or for every command: export MAGPIE_HOME={shlex.quote(str(home))}",
    ]


def enrol_known_faces(out: TextIO) -> None:
    """Enrol the bundled known people (file name = person) so the demo can name them."""
    from chalicelib import backend

    gallery = backend.face_gallery()
    for path in sorted(KNOWN_FACES.glob("*.jpg")):
        name = path.stem.replace("-", " ").title()
        gallery.add(name, [path.read_bytes()])
        print(f"Known person enrolled: {name} ({path.name})", file=out)


def describe_reply(path: Path) -> str:
    """The dry-run outbox file: what would be posted, and the annotated pictures."""
    record = json.loads(path.read_text())
    images = ", ".join(image["path"] for image in record.get("images") or [])
    return f"{'outbox':<24} {path}" + (
        f"\n   {'annotated image(s)':<24} {images}" if images else ""
    )


def _counts(body: Any) -> str:
    if not isinstance(body, dict) or "events" not in body:
        return str(body)
    return (
        f"({body['events']} raw event(s), {body['messages']} new message(s), "
        f"{body['duplicates']} duplicate(s), {body['skipped']} not for the bot)"
    )
