"""The bot's X keys: Secrets Manager on AWS, the environment (or a generated file) locally.

Secrets are fetched lazily and cached; they are never logged, and their repr is masked.
"""

from __future__ import annotations

import json
import os
import secrets as _random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from chalicelib.config import ConfigError, settings

LOCAL_SECRET_FILE = "x-secret.json"  # noqa: S105 (a file name, not a secret)
ENV_NAMES = {
    "api_key": "TWITTER_API_KEY",
    "api_secret": "TWITTER_API_SECRET",
    "access_token": "TWITTER_ACCESS_TOKEN",
    "access_token_secret": "TWITTER_ACCESS_TOKEN_SECRET",
}
SECRET_JSON_NAMES = {
    "api_key": "ApiKey",
    "api_secret": "ApiSecret",
    "access_token": "AccessToken",
    "access_token_secret": "AccessTokenSecret",
}


@dataclass(frozen=True)
class TwitterKeys:
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    access_token: str = field(repr=False, default="")
    access_token_secret: str = field(repr=False, default="")
    generated: bool = False

    @property
    def can_post(self) -> bool:
        return bool(self.api_key and self.access_token and self.access_token_secret)

    def values(self) -> list[str]:
        """Every secret value, for scrubbing checks."""
        return [
            v
            for v in (self.api_key, self.api_secret, self.access_token, self.access_token_secret)
            if v
        ]


def twitter_keys() -> TwitterKeys:
    """The keys for the configured backend (cached)."""
    if settings().backend == "aws":
        return _aws_keys()
    return _local_keys(str(settings().home))


def consumer_secret() -> str:
    """The consumer (API) secret that signs webhooks and CRC answers."""
    return twitter_keys().api_secret


def alert_webhook_url() -> str | None:
    """The alert webhook's URL, a credential: on AWS the secret ALERT_WEBHOOK_SECRET_ID
    ({"Url": ...}, an empty Url for none), read when an alert is forwarded and cached by
    Powertools; locally ALERT_WEBHOOK_URL."""
    config = settings()
    secret_id = config.alert_webhook_secret_id
    if config.backend != "aws" or not secret_id:
        return config.alert_webhook_url
    from aws_lambda_powertools.utilities import parameters

    raw = parameters.get_secret(secret_id, transform="json", max_age=300)
    if not isinstance(raw, dict):
        raise ConfigError('the alert webhook secret must be a JSON object {"Url": ...}')
    return str(raw.get("Url") or "").strip() or None


def reset_secret_cache() -> None:
    _local_keys.cache_clear()


def _aws_keys() -> TwitterKeys:
    # Powertools caches the secret for max_age seconds across invocations.
    from aws_lambda_powertools.utilities import parameters

    raw = parameters.get_secret(settings().twitter_secret_id, transform="json", max_age=300)
    if not isinstance(raw, dict):
        raise ConfigError("TwitterSecret must be a JSON object with ApiKey, ApiSecret, ...")
    missing = [name for name in ("ApiKey", "ApiSecret") if not raw.get(name)]
    if missing:
        raise ConfigError(f"TwitterSecret is missing {', '.join(missing)}")
    values = {attr: str(raw.get(key, "")) for attr, key in SECRET_JSON_NAMES.items()}
    # Only the string fields are given; `generated` keeps its default.
    return TwitterKeys(**values)  # type: ignore[arg-type]


@lru_cache(maxsize=4)
def _local_keys(home: str) -> TwitterKeys:
    if os.environ.get("TWITTER_API_SECRET", "").strip():
        values = {attr: os.environ.get(env, "").strip() for attr, env in ENV_NAMES.items()}
        return TwitterKeys(**values)  # type: ignore[arg-type]  # (strings only, as above)
    path = Path(home) / LOCAL_SECRET_FILE
    if path.exists():
        data = json.loads(path.read_text())
        return TwitterKeys(api_key=data["ApiKey"], api_secret=data["ApiSecret"], generated=True)
    raise ConfigError(
        "environment variable TWITTER_API_SECRET is required (or run `magpie serve`, "
        f"which generates a local secret under {home})"
    )


def ensure_local_secret(home: Path) -> TwitterKeys:
    """Locally, with no secret configured, generate one under MAGPIE_HOME (mode 0600)."""
    if os.environ.get("TWITTER_API_SECRET", "").strip():
        return _local_keys(str(home))
    path = home / LOCAL_SECRET_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        payload = {
            "ApiKey": "local-" + _random.token_hex(8),
            "ApiSecret": _random.token_urlsafe(32),
        }
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle)
        os.replace(tmp, path)
        _local_keys.cache_clear()
    return _local_keys(str(home))
