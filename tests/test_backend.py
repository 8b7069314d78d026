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
    # The "lite" profile: local text and image models and the intent matcher inside Lambda,
    # the face gallery mirrored from its S3 bucket.
    from chalicelib.analysis.gallery_sync import SyncedFaceGallery
    from chalicelib.analysis.local_image import LocalImageAnalyser
    from chalicelib.analysis.local_text import LocalTextAnalyser
    from chalicelib.responders.intents import LocalConversation

    monkeypatch.setenv("MAGPIE_BACKEND", "aws")
    monkeypatch.setenv("MEDIA_BUCKET", "magpie-media")
    monkeypatch.setenv("FACE_GALLERY_BUCKET", "magpie-faces")
    monkeypatch.setenv("TEXT_PROVIDER", "local")
    monkeypatch.setenv("IMAGE_PROVIDER", "local")
    monkeypatch.setenv("CONVERSATION_PROVIDER", "local")
    backend.reset()
    try:
        assert isinstance(backend.text_analyser(), LocalTextAnalyser)
        assert isinstance(backend.conversation(), LocalConversation)
        assert isinstance(backend.image_analyser(), LocalImageAnalyser)
        assert isinstance(backend.face_gallery(), SyncedFaceGallery)
    finally:
        backend.reset()


def test_local_images_on_aws_need_the_gallery_bucket(aws_credentials, monkeypatch):
    from chalicelib.config import ConfigError

    monkeypatch.setenv("MAGPIE_BACKEND", "aws")
    monkeypatch.setenv("MEDIA_BUCKET", "magpie-media")
    monkeypatch.setenv("IMAGE_PROVIDER", "local")
    monkeypatch.delenv("FACE_GALLERY_BUCKET", raising=False)
    backend.reset()
    try:
        with pytest.raises(ConfigError, match="FACE_GALLERY_BUCKET"):
            backend.image_analyser()
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
