"""The `magpie` command: serve, send and demo (more arrive with the operations layer)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path


def _home(args: argparse.Namespace) -> Path:
    return Path(args.home or os.environ.get("MAGPIE_HOME") or ".magpie").resolve()


def cmd_serve(args: argparse.Namespace) -> int:
    from chalicelib.config import settings
    from chalicelib.secrets import ensure_local_secret
    from magpie.runtime import Runtime, configure_environment
    from magpie.server import make_server

    home = _home(args)
    configure_environment(home, **({"MAGPIE_LIVE": "true"} if args.live else {}))
    _ = settings().bot_user_id  # fail fast, naming the variable, before binding the port
    keys = ensure_local_secret(home)
    if keys.generated:
        print(f"Using the generated webhook secret in {home / 'x-secret.json'}")
    server = make_server(args.host, args.port)
    print(
        f"Serving the webhook on http://{args.host}:{server.server.server_address[1]}/twitter",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runtime = Runtime(home)
    if not args.no_dispatch:
        runtime.start()
    try:
        thread = threading.Thread(target=server.server.serve_forever, daemon=True)
        thread.start()
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        server.shutdown()
    finally:
        if not args.no_dispatch:
            runtime.stop()
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from chalicelib import backend
    from magpie.runtime import configure_environment

    configure_environment(_home(args))
    letters = backend.local_bus_store().dead_letters()
    for letter in letters:
        print(
            f"{letter.event_id}  {letter.detail_type:<24} {letter.target:<40} "
            f"attempts={letter.attempts}  {letter.last_error}"
        )
    print(f"{len(letters)} dead letter(s)")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from chalicelib import backend
    from magpie.runtime import Runtime, configure_environment

    configure_environment(_home(args))
    if not args.dead_letters:
        print("nothing to replay: pass --dead-letters", file=sys.stderr)
        return 2
    count = backend.local_bus_store().redrive_dead_letters()
    print(f"redriving {count} dead letter(s)")
    with Runtime(_home(args)) as runtime:
        runtime.wait_idle(timeout=args.timeout)
        left = runtime.store.dead_letters()
    print(f"{len(left)} dead letter(s) left")
    return 0 if not left else 1


def cmd_faces(args: argparse.Namespace) -> int:
    """Enrol, list and remove known people (locally, or in the Rekognition collection)."""
    from chalicelib import backend
    from magpie.runtime import configure_environment

    if args.aws:
        return _faces_aws(args)
    configure_environment(_home(args))
    gallery = backend.face_gallery()
    if args.action == "add":
        images = [Path(p).read_bytes() for p in args.images]
        try:
            count = gallery.add(args.name, images)
        except ValueError as exc:
            print(f"magpie: {exc}", file=sys.stderr)
            return 2
        print(f"enrolled {count} face(s) of {args.name}")
    elif args.action == "remove":
        print("removed" if gallery.remove(args.name) else f"{args.name} was not enrolled")
    else:
        for name in gallery.names():
            print(name)
    return 0


def _faces_aws(args: argparse.Namespace) -> int:
    from chalicelib import backend
    from chalicelib.analysis.aws_image import enrol_known_face
    from chalicelib.config import ConfigError, settings

    collection = settings().rekognition_collection
    if not collection:
        raise ConfigError("environment variable REKOGNITION_COLLECTION_ID is required with --aws")
    if args.action != "add":
        print("with --aws only `add` is supported; manage the collection in the console")
        return 2
    client = backend.aws_client("rekognition")
    for image in args.images:
        face_id = enrol_known_face(client, collection, args.name, Path(image).read_bytes())
        print(f"indexed {image} as {args.name} (FaceId {face_id})")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from chalicelib.secrets import consumer_secret
    from magpie.client import post_signed
    from magpie.runtime import configure_environment

    configure_environment(_home(args))
    status, body = post_signed(args.url, Path(args.file).read_bytes(), consumer_secret())
    print(json.dumps({"status": status, "body": body}))
    return 0 if 200 <= status < 300 else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from magpie.demo import run_demo

    return run_demo(_home(args) / "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="magpie", description=__doc__)
    parser.add_argument("--home", help="state folder (default: $MAGPIE_HOME or ./.magpie)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the webhook and the whole bot locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--live",
        action="store_true",
        help="post replies to X for real (needs TWITTER_* credentials)",
    )
    serve.add_argument(
        "--no-dispatch",
        action="store_true",
        help="only accept webhooks onto the durable bus; deliver nothing",
    )
    serve.set_defaults(func=cmd_serve)

    faces = sub.add_parser("faces", help="known people the image responder can name")
    faces.add_argument("--aws", action="store_true", help="use the Rekognition collection")
    faces_sub = faces.add_subparsers(dest="action", required=True)
    add = faces_sub.add_parser("add", help="enrol a person from one or more photos")
    add.add_argument("name")
    add.add_argument("images", nargs="+")
    remove = faces_sub.add_parser("remove")
    remove.add_argument("name")
    faces_sub.add_parser("list")
    faces.set_defaults(func=cmd_faces)

    dead = sub.add_parser("dead-letters", help="list deliveries parked after their retries")
    dead.set_defaults(func=cmd_dead_letters)

    replay = sub.add_parser("replay", help="redeliver parked deliveries")
    replay.add_argument(
        "--dead-letters",
        action="store_true",
        help="retry every dead letter with a fresh attempt budget",
    )
    replay.add_argument("--timeout", type=float, default=300.0)
    replay.set_defaults(func=cmd_replay)

    send = sub.add_parser("send", help="sign a webhook payload and POST it")
    send.add_argument("file")
    send.add_argument("--url", default="http://127.0.0.1:8000/twitter")
    send.set_defaults(func=cmd_send)

    demo = sub.add_parser("demo", help="run every bundled sample through a fresh local stack")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from chalicelib.config import ConfigError

    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"magpie: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
