"""Adapter selection: what each backend and switch gives."""

from __future__ import annotations

import pytest

from chalicelib import backend
from chalicelib.config import ConfigError


def test_local_replies_go_to_the_dry_run_outbox(local_env):
    from chalicelib.egress.outbox import DryRunOutbox

    assert isinstance(backend.poster(), DryRunOutbox)


def test_live_local_replies_post_to_x_with_the_four_credentials(local_env, monkeypatch):
    from chalicelib.egress.poster import XPoster

    monkeypatch.setenv("MAGPIE_LIVE", "true")
    for name in ("TWITTER_API_KEY", "TWITTER_ACCESS_TOKEN", "TWITTER_ACCESS_TOKEN_SECRET"):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    backend.reset()
    assert isinstance(backend.poster(), XPoster)


def test_live_without_credentials_fails_naming_them(local_env, monkeypatch):
    monkeypatch.setenv("MAGPIE_LIVE", "true")
    backend.reset()
    with pytest.raises(ConfigError, match="TWITTER_ACCESS_TOKEN"):
        backend.poster()


def test_local_analysers_and_conversation(local_env):
    from chalicelib.analysis.local_image import LocalImageAnalyser
    from chalicelib.analysis.local_text import LocalTextAnalyser
    from chalicelib.responders.intents import LocalConversation

    assert isinstance(backend.text_analyser(), LocalTextAnalyser)
    assert isinstance(backend.image_analyser(), LocalImageAnalyser)
    assert isinstance(backend.conversation(), LocalConversation)


def test_lite_profile_runs_local_models_on_the_aws_backend(aws_credentials, monkeypatch):
    # The "lite" cost profile: local text models and intent matcher inside the Lambda.
    from chalicelib.analysis.aws_image import RekognitionImageAnalyser
    from chalicelib.analysis.local_text import LocalTextAnalyser
    from chalicelib.responders.intents import LocalConversation

    monkeypatch.setenv("MAGPIE_BACKEND", "aws")
    monkeypatch.setenv("MEDIA_BUCKET", "magpie-media")
    monkeypatch.setenv("TEXT_PROVIDER", "local")
    monkeypatch.setenv("CONVERSATION_PROVIDER", "local")
    backend.reset()
    try:
        assert isinstance(backend.text_analyser(), LocalTextAnalyser)
        assert isinstance(backend.conversation(), LocalConversation)
        assert isinstance(backend.image_analyser(), RekognitionImageAnalyser)
    finally:
        backend.reset()


def test_aws_providers_are_the_default_on_aws(aws_credentials, monkeypatch):
    from chalicelib.analysis.aws_text import ComprehendTextAnalyser

    monkeypatch.setenv("MAGPIE_BACKEND", "aws")
    backend.reset()
    try:
        assert isinstance(backend.text_analyser(), ComprehendTextAnalyser)
    finally:
        backend.reset()
