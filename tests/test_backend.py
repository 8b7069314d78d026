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


# Every factory and the port it returns; the type checker (make typecheck) holds each adapter
# to that Protocol, so the annotation is the contract.
FACTORY_PORTS = {
    "event_bus": "EventBus",
    "idempotency": "IdempotencyStore",
    "ingress_idempotency": "IdempotencyStore",
    "reply_idempotency": "IdempotencyStore",
    "blob_store": "BlobStore",
    "text_analyser": "TextAnalyser",
    "face_gallery": "KnownFaces",
    "image_analyser": "ImageAnalyser",
    "conversation": "Conversation",
    "poster": "Poster",
    "alert_sink": "AlertSink",
    "guard_store": "GuardStore",
}


@pytest.mark.parametrize(("factory", "port"), sorted(FACTORY_PORTS.items()))
def test_each_factory_returns_its_port(factory, port):
    import typing

    from chalicelib import ports

    returned = typing.get_type_hints(getattr(backend, factory))["return"]
    assert returned is getattr(ports, port)
    assert typing.Protocol in returned.__mro__


def _cached_factories() -> dict[str, object]:
    return {
        name: value
        for name, value in vars(backend).items()
        if callable(getattr(value, "cache_info", None)) and value is not backend.settings
    }


def test_every_cached_factory_is_forgotten_by_reset(local_env):
    factories = _cached_factories()
    assert set(FACTORY_PORTS) | {"aws_client", "local_bus_store"} <= set(factories)
    built = {name: getattr(backend, name)() for name in ("event_bus", "blob_store", "alert_sink")}
    built["guard_store"] = backend.guard_store()
    built["poster"] = backend.poster()
    assert all(factories[name].cache_info().currsize == 1 for name in built)
    backend.reset()
    assert {name: f.cache_info().currsize for name, f in factories.items()} == dict.fromkeys(
        factories, 0
    )
    assert all(getattr(backend, name)() is not adapter for name, adapter in built.items())
