"""Config fails fast, naming the variable; each required variable has a test."""

from __future__ import annotations

import pytest

from chalicelib.config import ConfigError, Settings

REQUIRED = {
    "bot_user_id": "TWITTER_BOT_USER_ID",
    "twitter_secret_id": "TWITTER_SECRET_ID",
    "idempotency_table": "IDEMPOTENCY_TABLE",
    "media_bucket": "MEDIA_BUCKET",
    "lex_bot_id": "LEX_BOT_ID",
    "lex_bot_alias_id": "LEX_BOT_ALIAS_ID",
    "alert_topic_arn": "ALERT_TOPIC_ARN",
    "archive_arn": "MAGPIE_ARCHIVE_ARN",
    "face_gallery_bucket": "FACE_GALLERY_BUCKET",
}


@pytest.mark.parametrize(("attribute", "variable"), sorted(REQUIRED.items()))
def test_missing_required_variable_names_it(attribute, variable):
    with pytest.raises(ConfigError, match=variable):
        getattr(Settings(env={}), attribute)


@pytest.mark.parametrize(("attribute", "variable"), sorted(REQUIRED.items()))
def test_blank_required_variable_counts_as_missing(attribute, variable):
    with pytest.raises(ConfigError, match=variable):
        getattr(Settings(env={variable: "   "}), attribute)


@pytest.mark.parametrize(("attribute", "variable"), sorted(REQUIRED.items()))
def test_required_variable_is_read(attribute, variable):
    assert getattr(Settings(env={variable: "value-1"}), attribute) == "value-1"


def test_defaults():
    config = Settings(env={})
    assert config.backend == "local"
    assert config.event_bus_name == "magpie"
    assert config.media_allowed_hosts == frozenset({"pbs.twimg.com"})
    assert config.replies_per_author_per_hour == 10
    assert config.blur_unknown_faces is False
    assert config.home.name == ".magpie"


def test_home_on_aws_defaults_to_the_temporary_directory(monkeypatch, tmp_path):
    # Lambda's task root is read-only: only /tmp (TMPDIR) can hold the gallery's copy.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    assert Settings(env={"MAGPIE_BACKEND": "aws"}).home == tmp_path.resolve() / "magpie"
    chosen = Settings(env={"MAGPIE_BACKEND": "aws", "MAGPIE_HOME": str(tmp_path / "x")})
    assert chosen.home == tmp_path.resolve() / "x"


@pytest.mark.parametrize(
    ("env", "attribute", "variable"),
    [
        ({"MAGPIE_BACKEND": "gcp"}, "backend", "MAGPIE_BACKEND"),
        (
            {"REPLIES_PER_AUTHOR_PER_HOUR": "many"},
            "replies_per_author_per_hour",
            "REPLIES_PER_AUTHOR_PER_HOUR",
        ),
        ({"MAX_BOT_THREAD_DEPTH": "0"}, "max_bot_thread_depth", "MAX_BOT_THREAD_DEPTH"),
        ({"BLUR_UNKNOWN_FACES": "maybe"}, "blur_unknown_faces", "BLUR_UNKNOWN_FACES"),
        ({"TEXT_CAPABILITIES": "sentiment,telepathy"}, "text_capabilities", "TEXT_CAPABILITIES"),
        ({"LOCAL_SENTIMENT": "bert"}, "local_sentiment", "LOCAL_SENTIMENT"),
        ({"TEXT_PROVIDER": "openai"}, "text_provider", "TEXT_PROVIDER"),
        ({"IMAGE_PROVIDER": "rekognition"}, "image_provider", "IMAGE_PROVIDER"),
        ({"CONVERSATION_PROVIDER": "lex"}, "conversation_provider", "CONVERSATION_PROVIDER"),
    ],
)
def test_malformed_values_name_the_variable(env, attribute, variable):
    with pytest.raises(ConfigError, match=variable):
        getattr(Settings(env=env), attribute)


def test_capabilities_can_be_switched_off_to_save_money():
    config = Settings(env={"IMAGE_CAPABILITIES": "faces, moderation"})
    assert config.image_capabilities == frozenset({"faces", "moderation"})


def test_providers_follow_the_backend_unless_chosen():
    assert Settings(env={}).text_provider == "local"
    aws = Settings(env={"MAGPIE_BACKEND": "aws"})
    assert (aws.text_provider, aws.image_provider, aws.conversation_provider) == (
        "comprehend",
        "rekognition",
        "lex",
    )
    lite = Settings(env={"MAGPIE_BACKEND": "aws", "TEXT_PROVIDER": "local"})
    assert lite.text_provider == "local"
