"""X_API_BASE_URL: the poster the backend builds posts to that host instead of X's (what the
emulator run's stub X relies on); unset, it posts to X."""

from __future__ import annotations

import json

import pytest
import responses

from chalicelib import backend
from chalicelib.config import Settings
from chalicelib.ports import ReplyRequest

STUB = "http://127.0.0.1:8099"


def _live_poster(monkeypatch: pytest.MonkeyPatch, local_env) -> object:
    monkeypatch.setenv("MAGPIE_LIVE", "true")
    for name in ("TWITTER_API_KEY", "TWITTER_ACCESS_TOKEN", "TWITTER_ACCESS_TOKEN_SECRET"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    backend.reset()
    return backend.poster()


@responses.activate
def test_replies_go_to_the_configured_x_host(local_env, monkeypatch) -> None:
    monkeypatch.setenv("X_API_BASE_URL", STUB)
    responses.post(f"{STUB}/2/tweets", json={"data": {"id": "77", "text": "hi"}}, status=201)
    poster = _live_poster(monkeypatch, local_env)

    result = poster.post(ReplyRequest("MENTION", "hi", "42", "1234"))

    [call] = responses.calls
    assert call.request.url == f"{STUB}/2/tweets"
    assert json.loads(call.request.body)["reply"]["in_reply_to_tweet_id"] == "1234"
    assert "77" in repr(result)


@responses.activate
def test_without_the_setting_replies_go_to_x(local_env, monkeypatch) -> None:
    monkeypatch.delenv("X_API_BASE_URL", raising=False)
    responses.post("https://api.twitter.com/2/tweets", json={"data": {"id": "78"}}, status=201)
    poster = _live_poster(monkeypatch, local_env)

    poster.post(ReplyRequest("MENTION", "hi", "42", "1234"))

    assert responses.calls[0].request.url == "https://api.twitter.com/2/tweets"


def test_the_setting_is_optional_and_blank_means_unset() -> None:
    assert Settings({}).x_api_base_url is None
    assert Settings({"X_API_BASE_URL": "  "}).x_api_base_url is None
    assert Settings({"X_API_BASE_URL": STUB}).x_api_base_url == STUB
