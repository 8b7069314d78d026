"""The magpie command as a user runs it: demo, faces, and what every mistake prints."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import boto3
import pytest
from magpie.cli import build_parser, main
from magpie.client import DEFAULT_PORT

from chalicelib import backend
from chalicelib.errors import (
    EXIT_CODES,
    ConfigurationError,
    InputError,
    NotFoundError,
    UnavailableError,
)
from tests.conftest import ROOT, SAMPLES
from tests.local.test_serve import MAGPIE, env_for, free_port

KNOWN = ROOT / "examples" / "known-faces" / "eileen-collins.jpg"


@pytest.mark.slow
def test_demo_runs_every_sample_and_reports_what_each_produced(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TWITTER_API_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)  # `magpie demo` as typed: its home is ./.magpie/demo
    assert main(["demo"]) == 0
    text = capsys.readouterr().out
    for sample in sorted((ROOT / "examples" / "webhooks").glob("*.json")):
        assert f"== {sample.name}: HTTP 200" in text
    assert "known: Eileen Collins" in text
    assert "media rejected (host_not_allowed)" in text  # DM media needs OAuth: not fetched
    assert "ALERT [NEGATIVE_MESSAGE] @sample_user_ana" in text
    assert "0 dead letters" in text
    assert "entities two" not in text  # a bare number is not worth listing
    assert_demo_label_is_the_lakes_and_the_dashboards(text, tmp_path / ".magpie" / "demo")

    # The demo's last lines say how to read its data; typed as printed, they see it.
    stats_line = next(line for line in text.splitlines() if line.strip().endswith(" stats"))
    argv = shlex.split(stats_line)
    assert argv[0] == "magpie"
    monkeypatch.delenv("MAGPIE_HOME", raising=False)  # as in a fresh shell
    assert main(argv[1:]) == 0
    lines = capsys.readouterr().out.splitlines()
    footer = next(i for i, line in enumerate(lines) if re.fullmatch(r"\(\d+ rows?\)", line))
    assert lines[footer + 1].startswith("X spend ")  # the day's X spend, below the table
    counts = {row.split()[0]: int(row.split()[1]) for row in lines[2:footer]}
    received = text.count("   MESSAGE_RECEIVED ")  # one line per message the demo printed
    assert received >= 6 and counts["MESSAGE_RECEIVED"] == counts["TWEET_SENT"] == received
    ledger_line = next(line for line in text.splitlines() if line.strip().endswith(" ledger"))
    assert main(shlex.split(ledger_line)[1:]) == 0
    assert f"messages: {received} ({received} sent)" in capsys.readouterr().out
    backend.reset()


def assert_demo_label_is_the_lakes_and_the_dashboards(text: str, home: Path) -> None:
    """Each message's printed sentiment is the label its lake record stores, and the one the
    dashboard shows for it: one label everywhere."""
    from magpie.dashboard.api import shown_sentiment

    printed, message = {}, None
    for line in text.splitlines():
        if match := re.match(r"\s+MESSAGE_RECEIVED\s+\S+ (\d+) ", line):
            message = match.group(1)
        elif match := re.match(r"\s+MESSAGE_ANALYSED\s+sentiment (\w+)", line):
            printed[message] = match.group(1)
    lake = {}
    for path in sorted(home.glob("lake/year=*/month=*/day=*/*.json")):
        for record in map(json.loads, path.read_text().splitlines()):
            if record.get("detail-type") == "MESSAGE_ANALYSED" and "replay-name" not in record:
                analysis = record["detail"]["Analysis"]
                lake[record["detail"]["MessageId"]] = analysis["TextSentiment"]
                assert shown_sentiment(analysis)[0] == analysis["TextSentiment"]
    assert printed and printed == lake


def test_faces_add_list_remove(local_env, capsys):
    home = str(local_env)
    assert main(["--home", home, "faces", "add", "Eileen Collins", str(KNOWN)]) == 0
    assert main(["--home", home, "faces", "list"]) == 0
    assert "Eileen Collins" in capsys.readouterr().out
    assert main(["--home", home, "faces", "remove", "Eileen Collins"]) == 0
    assert capsys.readouterr().out.startswith("removed Eileen Collins")
    assert main(["--home", home, "faces", "list"]) == 0
    assert capsys.readouterr().out == ""


def test_faces_add_refuses_a_photo_without_a_face(local_env, tmp_path, capsys):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), "white").save(blank)
    assert main(["--home", str(local_env), "faces", "add", "Nobody", str(KNOWN), str(blank)]) == 2
    err = capsys.readouterr().err
    assert f"{blank} shows no face" in err and "nothing was enrolled" in err
    assert main(["--home", str(local_env), "faces", "list"]) == 0
    assert "Nobody" not in capsys.readouterr().out


# --- one clear line and an exit code, never a traceback -----------------------------------


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("magpie") and err.count("\n") == 1, err
    return err


def test_send_with_no_server_listening_says_so_in_one_line(local_env, capsys):
    url = f"http://127.0.0.1:{free_port()}/twitter"  # nothing listens there
    code = main(
        ["--home", str(local_env), "send", str(SAMPLES / "mention-joke.json"), "--url", url]
    )
    assert code == UnavailableError.exit_code
    err = _one_line_error(capsys)
    assert f"cannot reach {url}" in err and "magpie serve" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "missing.json"],
        ["faces", "add", "Someone", "missing.jpg"],
        ["ledger", "--expect", "missing.txt"],
    ],
)
def test_a_missing_file_is_named_with_the_not_found_code(local_env, capsys, argv):
    assert main(["--home", str(local_env), *argv]) == NotFoundError.exit_code
    assert "missing." in _one_line_error(capsys)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["replay", "--from", "banana", "--to", "now"], "not a time: 'banana'"),
        (["replay", "--from", "99999999d", "--to", "now"], "out of range"),
        (["stats", "--since", "9999-12-31T23:00-05:00"], "out of range"),
        (["stats", "--since", "99999999999999999999999d"], "out of range"),
        (["stats", "--since", "1h", "--until", "2h"], "not before"),
        (["replay", "--from"], "expected one argument"),
        (["stats", "--by", "year"], "invalid choice"),
        (["report"], "give a query NAME or --sql"),
        (["serve", "--port", "99999"], "not a port (0 to 65535): '99999'"),
        (["serve", "--port", "http"], "not a port"),
    ],
)
def test_bad_times_and_arguments_are_input_errors(local_env, capsys, argv, words):
    assert main(["--home", str(local_env), *argv]) == InputError.exit_code
    assert words in _one_line_error(capsys)


def test_removing_someone_never_enrolled_is_not_found(local_env, capsys):
    assert main(["--home", str(local_env), "faces", "remove", "Nobody"]) == NotFoundError.exit_code
    assert "'Nobody' is not enrolled" in _one_line_error(capsys)


def test_serve_on_a_port_already_taken_says_so(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*MAGPIE, "serve", "--port", str(port)],
            env=env_for(tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == UnavailableError.exit_code
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "magpie: Address already in use: another process holds that port"
    ]


# --- help, version, exit codes, default port --------------------------------------------


def test_version_comes_from_the_package_metadata(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"magpie {metadata.version('magpie')}"


def test_help_documents_every_exit_code(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for code, meaning in EXIT_CODES.items():
        assert re.search(rf"^\s+{code}\s+{re.escape(meaning)}$", out, re.MULTILINE), code


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def test_every_option_and_argument_has_help():
    missing = [
        f"{parser.prog} {action.dest}"
        for parser in _parsers(build_parser())
        for action in parser._actions
        if not action.help and not isinstance(action, argparse._SubParsersAction)
    ]
    assert missing == []


def test_one_default_port_for_serve_and_send_and_it_is_not_chalice_locals():
    parser = build_parser()
    serve = parser.parse_args(["serve"])
    send = parser.parse_args(["send", "x.json"])
    assert serve.port == DEFAULT_PORT != 8000
    assert send.url == f"http://127.0.0.1:{DEFAULT_PORT}/twitter"
    readme = (ROOT / "README.md").read_text()
    assert f"127.0.0.1:{DEFAULT_PORT}" in readme and "127.0.0.1:8000" not in readme


def test_an_aws_command_without_credentials_is_one_line(local_env, capsys, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("MAGPIE_ARCHIVE_ARN", "arn:aws:events:eu-west-1:123456789012:archive/magpie")
    # boto3's default session keeps the credentials an earlier test in this worker resolved.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    backend.reset()
    code = main(["replay", "--aws", "--from", "2h", "--to", "now"])
    assert code == ConfigurationError.exit_code
    assert "Unable to locate credentials" in _one_line_error(capsys)


@pytest.mark.parametrize("argv", [["stats"], ["ledger"], ["report", "replies-by-outcome"]])
def test_an_empty_home_beside_the_demos_says_where_the_demo_data_is(local_env, capsys, argv):
    (local_env / "demo").mkdir(parents=True)
    assert main(["--home", str(local_env), *argv]) == 0
    err = capsys.readouterr().err
    assert err == (
        f"magpie: nothing in {local_env}; the demo's data is in {local_env / 'demo'}: "
        f"add --home {local_env / 'demo'}\n"
    )


def test_faces_add_names_the_file_that_is_not_an_image(local_env, tmp_path, capsys):
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    assert main(["--home", str(local_env), "faces", "add", "Bob", str(KNOWN), str(text)]) == 2
    assert f"{text} is not a photo Magpie accepts (not_an_image" in _one_line_error(capsys)


def test_dead_letters_are_one_line_each_with_the_redrive_command(local_env, capsys):
    from tests.ops.lakedata import history

    store = backend.local_bus_store()
    store.append(history()[:2])
    store.route_new([("responders.text_responder", lambda envelope: True)])
    for delivery in store.claim_due(2):
        store.fail(delivery, "ValueError: bad\nforged line", max_attempts=1, delay=0)
    assert main(["--home", str(local_env), "dead-letters"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all("ValueError: bad\\nforged line" in line for line in lines[:2])
    assert lines[2:] == ["2 dead letter(s)", "retry them with: magpie replay --dead-letters"]


def test_every_command_keeps_what_it_creates_private(tmp_path):
    # Not only `serve`: the first command to touch MAGPIE_HOME may be any other one.
    home = tmp_path / "home"
    result = subprocess.run(
        [*MAGPIE, "dead-letters"],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert result.returncode == 0, result.stderr
    created = [home, *home.rglob("*")]
    assert len(created) > 1  # the bus's database at least
    assert {
        p.name: oct(p.stat().st_mode & 0o777) for p in created if p.stat().st_mode & 0o077
    } == {}
