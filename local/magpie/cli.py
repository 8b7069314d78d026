"""The `magpie` command: serve, send and demo (more arrive with the operations layer)."""

from __future__ import annotations

import argparse
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
    settings().bot_user_id  # fail fast, naming the variable, before binding the port
    keys = ensure_local_secret(home)
    if keys.generated:
        print(f"Using the generated webhook secret in {home / 'x-secret.json'}")
    server = make_server(args.host, args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Runtime(home):
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        server.shutdown()
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
    serve.add_argument("--live", action="store_true",
                       help="post replies to X for real (needs TWITTER_* credentials)")
    serve.set_defaults(func=cmd_serve)

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
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
