"""The settings egress added: defaults, overrides and the errors they raise."""

from __future__ import annotations

import pytest

from chalicelib.config import ConfigError, Settings


def test_egress_defaults():
    config = Settings(env={"IDEMPOTENCY_TABLE": "magpie-idempotency"})
    assert config.reply_max_attempts == 3
    assert config.reply_max_wait_seconds == 20
    assert config.reply_memory_days == 400
    assert config.guard_table == "magpie-idempotency"  # the guards share the table by default


def test_egress_overrides():
    config = Settings(
        env={
            "REPLY_MAX_ATTEMPTS": "5",
            "REPLY_MAX_WAIT_SECONDS": "0",
            "REPLY_MEMORY_DAYS": "30",
            "GUARD_TABLE": "magpie-guards",
        }
    )
    assert (config.reply_max_attempts, config.reply_max_wait_seconds) == (5, 0)
    assert config.reply_memory_days == 30
    assert config.guard_table == "magpie-guards"


def test_guard_table_without_any_table_names_the_idempotency_variable():
    with pytest.raises(ConfigError, match="IDEMPOTENCY_TABLE"):
        _ = Settings(env={}).guard_table


@pytest.mark.parametrize(
    ("variable", "value", "attribute"),
    [
        ("REPLY_MAX_ATTEMPTS", "0", "reply_max_attempts"),
        ("REPLY_MAX_ATTEMPTS", "three", "reply_max_attempts"),
        ("REPLY_MAX_WAIT_SECONDS", "-1", "reply_max_wait_seconds"),
        ("REPLY_MEMORY_DAYS", "0", "reply_memory_days"),
    ],
)
def test_bad_values_name_the_variable(variable, value, attribute):
    with pytest.raises(ConfigError, match=variable):
        getattr(Settings(env={variable: value}), attribute)
