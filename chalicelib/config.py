"""All configuration, read in one place.

Every variable Magpie reads is a property here, with its default and the error it raises
when it is required and missing. Nothing is read at import time: `settings()` builds a
`Settings` over the environment on first use and caches it (`reset_settings()` in tests).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from chalicelib.errors import ConfigurationError

BACKENDS = ("aws", "local")
TEXT_CAPABILITIES = frozenset({"sentiment", "entities", "key_phrases", "language"})
IMAGE_CAPABILITIES = frozenset({"labels", "text", "faces", "moderation"})


class ConfigError(ConfigurationError, RuntimeError):
    """A required variable is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    # --- helpers ---------------------------------------------------------------------

    def _get(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name, "").strip()
        return value if value else default

    def require(self, name: str, why: str = "") -> str:
        value = self._get(name)
        if value is None:
            reason = f" ({why})" if why else ""
            raise ConfigError(f"environment variable {name} is required{reason}")
        return value

    def _int(self, name: str, default: int, minimum: int = 0) -> int:
        raw = self._get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError as exc:
            raise ConfigError(
                f"environment variable {name} must be an integer, got {raw!r}"
            ) from exc
        if value < minimum:
            raise ConfigError(f"environment variable {name} must be >= {minimum}, got {value}")
        return value

    def _bool(self, name: str, default: bool) -> bool:
        raw = self._get(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"environment variable {name} must be true or false, got {raw!r}")

    def _set(self, name: str, default: frozenset[str], allowed: frozenset[str]) -> frozenset[str]:
        raw = self._get(name)
        if raw is None:
            return default
        values = frozenset(v.strip() for v in raw.split(",") if v.strip())
        unknown = values - allowed
        if unknown:
            raise ConfigError(
                f"environment variable {name} has unknown values {sorted(unknown)}; "
                f"allowed: {sorted(allowed)}"
            )
        return values

    # --- backend and places ----------------------------------------------------------

    @property
    def backend(self) -> str:
        value = (self._get("MAGPIE_BACKEND", "local") or "local").lower()
        if value not in BACKENDS:
            raise ConfigError(f"environment variable MAGPIE_BACKEND must be one of {BACKENDS}")
        return value

    @property
    def home(self) -> Path:
        """Where local state lives. In Lambda only /tmp is writable, so on AWS the default
        is a folder under the temporary directory (the lite profile's local models keep the
        face gallery's copy there)."""
        default = ".magpie"
        if self.backend == "aws":
            default = str(Path(tempfile.gettempdir()) / "magpie")
        return Path(self._get("MAGPIE_HOME", default) or default).resolve()

    @property
    def region(self) -> str:
        return self._get("AWS_REGION") or self._get("AWS_DEFAULT_REGION") or "us-east-1"

    @property
    def account(self) -> str:
        return self._get("MAGPIE_ACCOUNT_ID", "000000000000") or "000000000000"

    # --- X ----------------------------------------------------------------------------

    @property
    def bot_user_id(self) -> str:
        return self.require("TWITTER_BOT_USER_ID", "the bot's own X user id")

    @property
    def twitter_secret_id(self) -> str:
        return self.require("TWITTER_SECRET_ID", "the Secrets Manager secret with the X keys")

    @property
    def live_replies(self) -> bool:
        """Locally, replies go to the dry-run outbox unless this is set (magpie serve --live)."""
        return self._bool("MAGPIE_LIVE", False)

    @property
    def x_api_base_url(self) -> str | None:
        """Another host for X's API (scheme and host), e.g. a stub X in an emulator run;
        unset, egress calls X itself."""
        return self._get("X_API_BASE_URL")

    # --- AWS resources ----------------------------------------------------------------

    @property
    def event_bus_name(self) -> str:
        return self._get("EVENT_BUS_NAME", "magpie") or "magpie"

    @property
    def idempotency_table(self) -> str:
        return self.require("IDEMPOTENCY_TABLE", "the DynamoDB idempotency table")

    @property
    def media_bucket(self) -> str:
        return self.require("MEDIA_BUCKET", "the S3 bucket for media and annotated images")

    @property
    def lex_bot_id(self) -> str:
        return self.require("LEX_BOT_ID", "the Lex V2 bot")

    @property
    def lex_bot_alias_id(self) -> str:
        return self.require("LEX_BOT_ALIAS_ID", "the Lex V2 bot alias")

    @property
    def lex_locale(self) -> str:
        return self._get("LEX_LOCALE_ID", "en_GB") or "en_GB"

    @property
    def rekognition_collection(self) -> str | None:
        return self._get("REKOGNITION_COLLECTION_ID")

    @property
    def face_gallery_bucket(self) -> str:
        return self.require(
            "FACE_GALLERY_BUCKET", "the S3 bucket of the known-faces gallery (IMAGE_PROVIDER=local)"
        )

    @property
    def alert_topic_arn(self) -> str:
        return self.require("ALERT_TOPIC_ARN", "the SNS alert topic")

    @property
    def archive_arn(self) -> str:
        return self.require("MAGPIE_ARCHIVE_ARN", "the EventBridge archive to replay from")

    @property
    def alert_webhook_url(self) -> str | None:
        return self._get("ALERT_WEBHOOK_URL")

    @property
    def alert_webhook_secret_id(self) -> str | None:
        return self._get("ALERT_WEBHOOK_SECRET_ID")

    # --- analysis ---------------------------------------------------------------------

    @property
    def text_capabilities(self) -> frozenset[str]:
        return self._set("TEXT_CAPABILITIES", TEXT_CAPABILITIES, TEXT_CAPABILITIES)

    @property
    def image_capabilities(self) -> frozenset[str]:
        return self._set("IMAGE_CAPABILITIES", IMAGE_CAPABILITIES, IMAGE_CAPABILITIES)

    @property
    def media_allowed_hosts(self) -> frozenset[str]:
        raw = self._get("MEDIA_ALLOWED_HOSTS", "pbs.twimg.com") or "pbs.twimg.com"
        return frozenset(h.strip().lower() for h in raw.split(",") if h.strip())

    @property
    def media_mirror(self) -> Path | None:
        raw = self._get("MAGPIE_MEDIA_MIRROR")
        return Path(raw).resolve() if raw else None

    def _provider(self, name: str, paid: str) -> str:
        """Which provider answers a port: the AI service on AWS by default, the local models
        otherwise; `local` on AWS runs the local models inside the Lambda (the "lite" cost
        profile of docs/PERFORMANCE.md; those models need a container-image Lambda)."""
        default = paid if self.backend == "aws" else "local"
        value = (self._get(name, default) or default).lower()
        if value not in (paid, "local"):
            raise ConfigError(f"environment variable {name} must be {paid} or local")
        if value == paid and self.backend != "aws":
            raise ConfigError(f"environment variable {name}={paid} needs MAGPIE_BACKEND=aws")
        return value

    @property
    def text_provider(self) -> str:
        return self._provider("TEXT_PROVIDER", "comprehend")

    @property
    def image_provider(self) -> str:
        return self._provider("IMAGE_PROVIDER", "rekognition")

    @property
    def conversation_provider(self) -> str:
        return self._provider("CONVERSATION_PROVIDER", "lex")

    @property
    def local_sentiment(self) -> str:
        value = (self._get("LOCAL_SENTIMENT", "e5") or "e5").lower()
        if value not in ("e5", "vader"):
            raise ConfigError("environment variable LOCAL_SENTIMENT must be e5 or vader")
        return value

    # --- responders and egress --------------------------------------------------------

    @property
    def blur_unknown_faces(self) -> bool:
        return self._bool("BLUR_UNKNOWN_FACES", False)

    @property
    def replies_per_author_per_hour(self) -> int:
        return self._int("REPLIES_PER_AUTHOR_PER_HOUR", 10, minimum=1)

    @property
    def max_bot_thread_depth(self) -> int:
        return self._int("MAX_BOT_THREAD_DEPTH", 3, minimum=1)

    @property
    def x_daily_budget_usd(self) -> float | None:
        """The most X may be paid for in a UTC day (USD, priced with x_prices.json); None
        (unset or empty, the default) is no budget."""
        raw = self._get("X_DAILY_BUDGET_USD")
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError as exc:
            raise ConfigError(
                f"environment variable X_DAILY_BUDGET_USD must be a number of dollars, got {raw!r}"
            ) from exc
        if not value >= 0:  # also refuses nan
            raise ConfigError(f"environment variable X_DAILY_BUDGET_USD must be >= 0, got {raw!r}")
        return value

    @property
    def http_timeout_seconds(self) -> int:
        return self._int("HTTP_TIMEOUT_SECONDS", 10, minimum=1)

    # --- local runtime ----------------------------------------------------------------

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """Host names `magpie serve` answers besides the address it is bound to: a page on
        any other name (DNS rebinding) must not reach the webhook or the dashboard."""
        raw = self._get("MAGPIE_ALLOWED_HOSTS", "") or ""
        return frozenset(h.strip().lower().rstrip(".") for h in raw.split(",") if h.strip())

    @property
    def bus_max_attempts(self) -> int:
        return self._int("MAGPIE_BUS_MAX_ATTEMPTS", 5, minimum=1)

    @property
    def bus_base_delay_ms(self) -> int:
        return self._int("MAGPIE_BUS_BASE_DELAY_MS", 200, minimum=0)

    @property
    def bus_workers(self) -> int:
        """Delivery threads: enough that an analysis waiting in native code (the models
        release the GIL) leaves the other core, and the replies, something to do."""
        return self._int("MAGPIE_BUS_WORKERS", 4, minimum=1)

    @property
    def prune_interval_minutes(self) -> int:
        """How often the local runtime prunes what it keeps (0: never)."""
        return self._int("MAGPIE_PRUNE_INTERVAL_MINUTES", 60, minimum=0)

    @property
    def bus_retention_days(self) -> int:
        """Finished bus deliveries, the events they carried (the local archive that
        `magpie replay --from/--to` reads) and downloaded media: kept this long."""
        return self._int("MAGPIE_BUS_RETENTION_DAYS", 7, minimum=1)

    @property
    def lake_retention_days(self) -> int:
        """Days of the local data lake kept (0: kept for ever)."""
        return self._int("MAGPIE_LAKE_RETENTION_DAYS", 90, minimum=0)

    @property
    def outbox_retention_days(self) -> int:
        """Days of dry-run replies kept in the outbox (0: kept for ever)."""
        return self._int("MAGPIE_OUTBOX_RETENTION_DAYS", 7, minimum=0)

    # --- egress delivery and loop guards --------------------------------------------

    @property
    def reply_max_attempts(self) -> int:
        """Attempts at posting one reply within one delivery before handing it back to the bus."""
        return self._int("REPLY_MAX_ATTEMPTS", 3, minimum=1)

    @property
    def reply_max_wait_seconds(self) -> int:
        """The longest one wait (a 429's reset, a backoff) inside one delivery. It must stay
        well under the egress Lambda timeout and the idempotency in-progress expiry (120 s);
        a longer rate limit is handed back to the bus instead."""
        return self._int("REPLY_MAX_WAIT_SECONDS", 20, minimum=0)

    @property
    def reply_memory_days(self) -> int:
        """How long egress remembers that a message was answered. Archive replays older than
        this could answer a message again, so keep it above the event archive's retention."""
        return self._int("REPLY_MEMORY_DAYS", 400, minimum=1)

    @property
    def guard_table(self) -> str:
        """The DynamoDB table for the loop guards' counters; the idempotency table by default
        (its `id` key and `expiration` TTL attribute suit the guards' items too)."""
        return self._get("GUARD_TABLE") or self.idempotency_table


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    settings.cache_clear()
