"""The `magpie` command, the local runtime's entry point (`magpie --help` lists its commands)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

from chalicelib.errors import (
    EXIT_CODES,
    ConfigurationError,
    InputError,
    MagpieError,
    NotFoundError,
    RefusedError,
    UnavailableError,
)

INTERRUPTED = 130  # what a shell reports for a command ended by Ctrl-C (128 + SIGINT)
FORMAT_OPTION: dict[str, Any] = {
    "choices": ("table", "csv", "json"),
    "default": "table",
    "help": "output format (default: %(default)s); csv cells that a spreadsheet would run "
    "as formulas are prefixed with '",
}


def _home(args: argparse.Namespace) -> Path:
    """The one state folder every command reads and writes (`magpie demo` uses <home>/demo)."""
    return Path(args.home or os.environ.get("MAGPIE_HOME") or ".magpie").resolve()


def _hint_if_empty(home: Path, found: int) -> None:
    """Nothing found here, but the demo's data is one folder down: say how to read it."""
    demo = home / "demo"
    if not found and demo.is_dir():
        print(
            f"magpie: nothing in {home}; the demo's data is in {demo}: add --home {demo}",
            file=sys.stderr,
        )


def cmd_serve(args: argparse.Namespace) -> int:
    from chalicelib.config import settings
    from chalicelib.secrets import ensure_local_secret
    from magpie.runtime import Runtime, configure_environment
    from magpie.server import keep_private, make_server

    home = _home(args)
    keep_private(home)
    configure_environment(home, **({"MAGPIE_LIVE": "true"} if args.live else {}))
    _ = settings().bot_user_id  # fail fast, naming the variable, before binding the port
    keys = ensure_local_secret(home)
    if keys.generated:
        print(f"Using the generated webhook secret in {home / 'x-secret.json'}")
    if not args.verbose:
        # waitress warns at every queued request under a burst: noise beside real alerts.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = make_server(args.host, args.port, verbose=args.verbose)
    base = f"http://{args.host}:{server.port}"
    print(
        f"Serving the webhook on {base}/twitter and the dashboard on {base}/dashboard/", flush=True
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runtime = Runtime(home)
    if not args.no_dispatch:
        runtime.start()
    try:
        thread = threading.Thread(target=server.serve_forever, name="webhook-server", daemon=True)
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
    from magpie.reports import table_safe
    from magpie.runtime import configure_environment

    configure_environment(_home(args))
    letters = backend.local_bus_store().dead_letters()
    for letter in letters:
        # An error's text can quote the message that caused it: one line per letter.
        print(
            f"{letter.event_id}  {letter.detail_type:<24} {letter.target:<40} "
            f"attempts={letter.attempts}  {table_safe(letter.last_error or '')}"
        )
    print(f"{len(letters)} dead letter(s)")
    if letters:
        print("retry them with: magpie replay --dead-letters")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    if args.dead_letters:
        if args.aws or args.start or args.end or args.detail_type:
            raise InputError("--dead-letters takes no window, detail-type or --aws")
        return _replay_dead_letters(args)
    if not (args.start and args.end):
        raise InputError("nothing to replay: pass --from and --to, or --dead-letters")
    return _replay_aws(args) if args.aws else _replay_archive(args)


def _replay_dead_letters(args: argparse.Namespace) -> int:
    from chalicelib import backend
    from magpie.runtime import Runtime, configure_environment

    configure_environment(_home(args))
    count = backend.local_bus_store().redrive_dead_letters()
    print(f"redriving {count} dead letter(s)")
    with Runtime(_home(args)) as runtime:
        runtime.wait_idle(timeout=args.timeout)
        left = runtime.store.dead_letters()
    print(f"{len(left)} dead letter(s) left")
    return 0 if not left else 1


def _replay_archive(args: argparse.Namespace) -> int:
    """Re-publish archived originals on the local bus, then deliver them (unless a running
    `magpie serve` is to: --no-dispatch)."""
    from collections import Counter

    from chalicelib import backend
    from magpie.replay import replay_local
    from magpie.runtime import Runtime, configure_environment
    from magpie.stats import window

    home = _home(args)
    span = window(args.start, args.end)
    configure_environment(home)
    store = backend.local_bus_store()
    replay = replay_local(store, span.start, span.end, args.detail_type, args.name)
    print(f"replay {replay.name}: {replay.events} event(s) from {span.start} to {span.end}")
    if args.no_dispatch or not replay.events:
        return 0
    with Runtime(home) as runtime:
        idle = runtime.wait_idle(timeout=args.timeout)
        dead = runtime.store.dead_letters()
    produced = Counter(
        envelope["detail-type"]
        for _, envelope in store.events_since(replay.first_seq)
        if envelope.get("replay-name") != replay.name
    )
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(produced.items())) or "nothing new"
    print(f"the replay produced: {summary}")
    if not idle:
        print(f"still delivering after {args.timeout:.0f} s", file=sys.stderr)
    if dead:
        print(f"{len(dead)} dead letter(s): see `magpie dead-letters`", file=sys.stderr)
    return 0 if idle and not dead else 1


def _replay_aws(args: argparse.Namespace) -> int:
    """Start an EventBridge archive replay (MAGPIE_ARCHIVE_ARN) onto the archive's bus."""
    from chalicelib import backend
    from chalicelib.config import settings
    from magpie.replay import start_aws_replay, wait_for_replay
    from magpie.stats import window

    archive_arn = args.archive_arn or settings().archive_arn
    span = window(args.start, args.end)
    client = backend.aws_client("events")
    started = start_aws_replay(
        client,
        archive_arn=archive_arn,
        start=span.start,
        end=span.end,
        name=args.name,
        detail_types=args.detail_type or (),
        rule_arns=args.rule or (),
        bus_arn=args.bus_arn,
    )
    print(f"started EventBridge replay {started['ReplayName']} ({started.get('State')})")
    print(json.dumps({"Destination": started["Destination"]}))
    if not args.wait:
        return 0
    final = wait_for_replay(client, started["ReplayName"], timeout=args.timeout)
    print(f"replay {started['ReplayName']}: {final['State']} {final.get('StateReason', '')}")
    return 0 if final["State"] == "COMPLETED" else 1


def cmd_report(args: argparse.Namespace) -> int:
    from magpie import reports

    if args.list:
        for name, path in reports.named_queries().items():
            print(f"{name:<26} {reports.describe_query(path)}")
        return 0
    if bool(args.name) == bool(args.sql):
        raise InputError("give a query NAME or --sql (or --list)")
    sql = args.sql or reports.query_text(args.name)
    result = reports.run(sql, _home(args) / "lake")
    if result.skipped:
        print(f"magpie: warning: {result.skipped}", file=sys.stderr)
    _hint_if_empty(_home(args), len(reports.lake_files(_home(args) / "lake")))
    sys.stdout.write(reports.render(result, args.format))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from chalicelib import backend
    from magpie import reports
    from magpie.runtime import configure_environment
    from magpie.stats import count_events, todays_x_spend, window, x_spend_line

    span = window(args.since, args.until)
    configure_environment(_home(args))
    envelopes = [envelope for _, envelope in backend.local_bus_store().events_since(0)]
    _hint_if_empty(_home(args), len(envelopes))
    result = count_events(envelopes, span, args.by)
    sys.stdout.write(reports.render(result, args.format))
    # Beside the table, not in it: json and csv stay one table for the programs that read them.
    print(x_spend_line(todays_x_spend()), file=sys.stdout if args.format == "table" else sys.stderr)
    return 0


def cmd_faces(args: argparse.Namespace) -> int:
    """Enrol, list and remove known people: in the local gallery; with --aws in the gallery
    the lite profile keeps in S3 (IMAGE_PROVIDER=local) or in the Rekognition collection."""
    from chalicelib import backend
    from chalicelib.config import settings
    from magpie.runtime import configure_environment

    if args.aws:
        os.environ["MAGPIE_BACKEND"] = "aws"
        backend.reset()
        if settings().image_provider == "rekognition":
            return _faces_rekognition(args)
    else:
        configure_environment(_home(args))
    gallery = backend.face_gallery()
    if args.action == "add":
        count = _enrol(gallery, args.name, args.images)
        print(f"enrolled {count} face(s) of {args.name} in {gallery.location}")
    elif args.action == "remove":
        if not gallery.remove(args.name):
            raise NotFoundError(f"{args.name!r} is not enrolled in {gallery.location}")
        print(f"removed {args.name} from {gallery.location}")
    else:
        for name in gallery.names():
            print(name)
    return 0


def _enrol(gallery: Any, name: str, paths: list[str]) -> int:
    """Enrol every photo or none; an error names the file, not its position."""
    from chalicelib.analysis.gallery import EnrolmentPhotoError

    images = [Path(p).read_bytes() for p in paths]
    for path, data in zip(paths, images, strict=True):
        _check_is_image(path, data)
    try:
        return gallery.add(name, images)
    except EnrolmentPhotoError as exc:
        raise InputError(
            f"{paths[exc.index]} shows {exc.found}: enrol {name!r} with photos of exactly "
            "one face (nothing was enrolled)"
        ) from exc
    except InputError:
        raise
    except ValueError as exc:  # a blank name
        raise InputError(str(exc)) from exc


def _check_is_image(path: str, data: bytes) -> None:
    """The checks a downloaded photo passes (JPEG, PNG, GIF or WEBP; header size before any
    pixel is decoded; decoded whole): a failure names the file, in one line."""
    from chalicelib.analysis.media import MediaRejected, validate_image

    try:
        validate_image(data)
    except MediaRejected as exc:
        raise InputError(f"{path} is not a photo Magpie accepts ({exc})") from exc


def _faces_rekognition(args: argparse.Namespace) -> int:
    from chalicelib import backend
    from chalicelib.analysis.aws_image import enrol_known_face
    from chalicelib.config import ConfigError, settings

    collection = settings().rekognition_collection
    if not collection:
        raise ConfigError("environment variable REKOGNITION_COLLECTION_ID is required with --aws")
    if args.action != "add":
        raise InputError("with --aws only `add` is supported; manage the collection in the console")
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


def cmd_ledger(args: argparse.Namespace) -> int:
    """Check that every received message ended exactly once (see magpie/ledger.py)."""
    from magpie import ledger

    home = _home(args)
    if args.wait and not ledger.wait_until_idle(home, args.wait):
        print(f"the bus is still busy after {args.wait:.0f} s", file=sys.stderr)
    expected = ledger.read_expected(Path(args.expect)) if args.expect else None
    report = ledger.check(home, expected)
    _hint_if_empty(home, report.messages)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(ledger.format_report(report))
    return ledger.exit_code(report, allow_parked=not args.strict)


def cmd_loadtest(args: argparse.Namespace) -> int:
    """Concurrent signed deliveries against a local `magpie serve`, then the ledger."""
    from magpie.loadtest import LoadOptions, run_loadtest

    home = _home(args) / "loadtest" if not args.fresh_home else Path(args.fresh_home).resolve()
    if home.exists() and not args.fresh_home:
        import shutil

        shutil.rmtree(home)  # always a fresh run under <home>/loadtest
    options = LoadOptions(
        count=args.count,
        concurrency=args.concurrency,
        image_share=args.image_share,
        copies=args.copies,
        timeout=args.timeout,
        seed=args.seed,
    )
    try:
        figures = run_loadtest(home, options)
    except ValueError as exc:  # a non-empty --fresh-home, or a count out of bounds
        raise InputError(str(exc)) from exc
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    report_ok = figures["ledger"]["holds"] and figures["ledger"]["settled"]
    return 0 if report_ok and figures["unacknowledged"] == 0 else 1


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported in one line (and the exit code of bad input)."""

    def error(self, message: str) -> NoReturn:
        self.exit(InputError.exit_code, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _port(text: str) -> int:
    """A TCP port: the server would silently take 99999 as 99999 - 65536."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port (0 to 65535): {text!r}")
    return port


def _exit_codes_epilog() -> str:
    lines = [f"  {code:<3} {meaning}" for code, meaning in sorted(EXIT_CODES.items())]
    lines.append(f"  {INTERRUPTED:<3} interrupted (Ctrl-C)")
    return "exit codes:\n" + "\n".join(lines)


def _version() -> str:
    try:
        return metadata.version("magpie")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    from magpie.client import DEFAULT_PORT, DEFAULT_URL

    parser = _Parser(
        prog="magpie",
        description=__doc__,
        epilog=_exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "--home",
        help="state folder every command shares (default: $MAGPIE_HOME, else ./.magpie; "
        "`magpie demo` runs in <home>/demo)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the webhook and the whole bot locally")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="port, 0 for any free (default: %(default)s)",
    )
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
    serve.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,  # keeps `magpie -v serve` as set before the command
        help="debug logging and one access-log line per request",
    )
    serve.set_defaults(func=cmd_serve)

    faces = sub.add_parser("faces", help="known people the image responder can name")
    faces.add_argument(
        "--aws",
        action="store_true",
        help="the deployed gallery: in FACE_GALLERY_BUCKET with IMAGE_PROVIDER=local, "
        "else the Rekognition collection",
    )
    faces_sub = faces.add_subparsers(dest="action", required=True)
    add = faces_sub.add_parser("add", help="enrol a person from one or more photos")
    add.add_argument("name", help="the person's name, as replies will write it")
    add.add_argument("images", nargs="+", help="photos (JPEG, PNG...) each showing one face")
    remove = faces_sub.add_parser("remove", help="forget a person (exit 5 if not enrolled)")
    remove.add_argument("name", help="the name given to `faces add`")
    faces_sub.add_parser("list", help="the enrolled names")
    faces.set_defaults(func=cmd_faces)

    dead = sub.add_parser("dead-letters", help="list deliveries parked after their retries")
    dead.set_defaults(func=cmd_dead_letters)

    replay = sub.add_parser(
        "replay",
        help="re-publish archived events (locally, or from the EventBridge archive with --aws)",
        description="Re-publish archived events with start <= time < end, or retry dead "
        "letters. Times are ISO-8601 (UTC unless a zone is given), 'now', or an age like 2h.",
    )
    replay.add_argument("--from", dest="start", help="start of the window (inclusive)")
    replay.add_argument("--to", dest="end", help="end of the window (exclusive)")
    replay.add_argument(
        "--detail-type", action="append", help="only events of this detail-type (repeatable)"
    )
    replay.add_argument("--name", help="replay name (default: magpie-replay-<time>-<random>)")
    replay.add_argument(
        "--dead-letters",
        action="store_true",
        help="retry every dead letter with a fresh attempt budget",
    )
    replay.add_argument(
        "--no-dispatch",
        action="store_true",
        help="only re-publish; leave delivery to a running `magpie serve`",
    )
    replay.add_argument(
        "--aws", action="store_true", help="start an EventBridge replay from the archive"
    )
    replay.add_argument("--archive-arn", help="with --aws (default: $MAGPIE_ARCHIVE_ARN)")
    replay.add_argument("--bus-arn", help="with --aws (default: the archive's event bus)")
    replay.add_argument(
        "--rule", action="append", help="with --aws: replay only to this rule ARN (repeatable)"
    )
    replay.add_argument(
        "--wait", action="store_true", help="with --aws: wait until the replay has finished"
    )
    replay.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to wait for delivery (locally) or for --wait (default: %(default)s)",
    )
    replay.set_defaults(func=cmd_replay)

    report = sub.add_parser(
        "report",
        help="run a named query or --sql over the local data lake (DuckDB)",
        description="The tables are the Glue tables of queries/glue/; the named queries are "
        "queries/athena/*.sql, the same files Athena runs on AWS. --sql runs in a full DuckDB "
        "with your own rights: it can read and write any local file you can (read_csv, COPY "
        "... TO, ATTACH), so run only SQL you trust.",
    )
    report.add_argument("name", nargs="?", help="a named query (see --list)")
    report.add_argument(
        "--sql",
        help="SQL to run instead of a named query: full DuckDB, with access to local files",
    )
    report.add_argument("--list", action="store_true", help="list the named queries")
    report.add_argument("--format", **FORMAT_OPTION)
    report.set_defaults(func=cmd_report)

    stats = sub.add_parser(
        "stats",
        help="events per detail-type over a time window (the CloudWatch metrics, locally)",
    )
    stats.add_argument("--since", help="start (inclusive): ISO-8601, 'now' or an age like 2h")
    stats.add_argument("--until", help="end (exclusive): ISO-8601, 'now' or an age like 2h")
    stats.add_argument("--by", choices=("minute", "hour", "day"), help="count per time bucket")
    stats.add_argument("--format", **FORMAT_OPTION)
    stats.set_defaults(func=cmd_stats)

    send = sub.add_parser("send", help="sign a webhook payload and POST it")
    send.add_argument("file", help="a webhook payload (JSON), e.g. examples/webhooks/*.json")
    send.add_argument("--url", default=DEFAULT_URL, help="webhook URL (default: %(default)s)")
    send.set_defaults(func=cmd_send)

    demo = sub.add_parser(
        "demo", help="run every bundled sample through a fresh local stack in <home>/demo"
    )
    demo.set_defaults(func=cmd_demo)

    check = sub.add_parser(
        "ledger",
        help="check that every received message ended exactly once (lake, dead letters, outbox)",
    )
    check.add_argument("--json", action="store_true", help="the full report as JSON")
    check.add_argument("--wait", type=float, default=0.0, help="first wait up to S s for idle")
    check.add_argument("--expect", help="file of acknowledged messages, '<Kind> <MessageId>'")
    check.add_argument("--strict", action="store_true", help="parked messages fail the check")
    check.set_defaults(func=cmd_ledger)

    load = sub.add_parser(
        "loadtest", help="concurrent signed deliveries to a local `magpie serve` (loopback)"
    )
    load.add_argument("--count", type=int, default=300, help="deliveries (at most 5000)")
    load.add_argument("--concurrency", type=int, default=8, help="concurrent client threads")
    load.add_argument("--image-share", type=float, default=0.1, help="share with photos")
    load.add_argument("--copies", type=int, default=1, help="send every delivery N times")
    load.add_argument("--timeout", type=float, default=600.0, help="deadline in seconds")
    load.add_argument("--seed", type=int, default=1, help="random seed of the generated traffic")
    load.add_argument("--json", help="also write the figures to this file")
    load.add_argument("--fresh-home", help="run under this empty folder instead")
    load.set_defaults(func=cmd_loadtest)
    from magpie.x_admin import add_parser as add_x_parser

    add_x_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every expected failure ends as one line on stderr and the exit code
    of its kind (see `magpie --help`); a traceback means a bug."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a mistake argparse has already reported
        return exc.code if isinstance(exc.code, int) else InputError.exit_code
    # Every command may write DMs, photos or secrets under MAGPIE_HOME: whatever it creates
    # is its owner's alone (folders 0700, files 0600), whichever command creates it first.
    os.umask(0o077)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except MagpieError as exc:
        return _fail(str(exc), exc.exit_code)
    except OSError as exc:
        return _fail(*_describe_os_error(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", INTERRUPTED)
    except Exception as exc:
        if not type(exc).__module__.startswith("botocore."):
            raise  # not an expected failure: a bug, whose traceback is wanted
        return _fail(*_describe_aws_error(exc))


def _fail(message: str, code: int) -> int:
    print(f"magpie: {message}", file=sys.stderr)
    return code


def _describe_aws_error(exc: Exception) -> tuple[str, int]:
    """One line for what an AWS call (the --aws commands) raised, and its kind's code."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    if isinstance(exc, NoCredentialsError | NoRegionError):
        return f"AWS: {exc} (configure credentials and a region)", ConfigurationError.exit_code
    if isinstance(exc, EndpointConnectionError):
        return f"AWS: {exc}", UnavailableError.exit_code
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("AccessDenied", "AccessDeniedException", "UnrecognizedClientException"):
            return f"AWS: {exc}", RefusedError.exit_code
        if code.endswith(("NotFound", "NotFoundException")):
            return f"AWS: {exc}", NotFoundError.exit_code
    return f"AWS: {exc}", MagpieError.exit_code


def _describe_os_error(exc: OSError) -> tuple[str, int]:
    """One line for a file or network failure, and the exit code of its kind."""
    import errno

    what = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        what = f"{exc.filename}: {what}"
    if exc.errno == errno.EADDRINUSE:
        return f"{what}: another process holds that port", UnavailableError.exit_code
    if isinstance(exc, FileNotFoundError | NotADirectoryError | IsADirectoryError):
        return what, NotFoundError.exit_code
    if isinstance(exc, PermissionError):
        return what, RefusedError.exit_code
    if isinstance(exc, ConnectionError | TimeoutError):
        return what, UnavailableError.exit_code
    return what, MagpieError.exit_code


if __name__ == "__main__":
    sys.exit(main())
