"""The local runtime: the bus dispatcher with every target, configured for MAGPIE_HOME, and
the pruner that keeps what it stores within its retention (magpie/retention.py)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from chalicelib.lake_routes import MAGPIE_EVENTS_PATTERN, RAW_X_PATTERN
from magpie.apps import event_subscriptions
from magpie.dispatcher import Dispatcher, Target, pattern_target
from magpie.lake import LocalLake, raw_x_lake
from magpie.retention import Pruner, RetentionPolicy

logger = logging.getLogger(__name__)


def configure_environment(home: Path, **overrides: str) -> None:
    """Point every adapter at the local backend under `home` (and forget cached ones)."""
    from chalicelib import backend

    os.environ["MAGPIE_BACKEND"] = "local"
    os.environ["MAGPIE_HOME"] = str(home)
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in overrides.items():
        os.environ[name] = value
    backend.reset()


def lake_targets(home: Path) -> list[Target]:
    """The lake's two routes (chalicelib/lake_routes.py), as the two Firehose rules on AWS:
    Magpie's own events under the lake root, X's raw items under `x-raw/`."""
    events, raw = LocalLake(home / "lake"), raw_x_lake(home / "lake")
    return [
        pattern_target("lake", MAGPIE_EVENTS_PATTERN, lambda envelope, _: events.write(envelope)),
        pattern_target("lake-x-raw", RAW_X_PATTERN, lambda envelope, _: raw.write(envelope)),
    ]


def builtin_targets(home: Path) -> list[Target]:
    """Targets that are infrastructure on AWS (Firehose, Step Functions, SNS)."""
    from magpie.local_targets import local_targets

    return [*lake_targets(home), *local_targets(home)]


def app_targets() -> list[Target]:
    return [pattern_target(s.target, s.pattern, s.handler) for s in event_subscriptions()]


class Runtime:
    def __init__(
        self, home: Path, *, workers: int | None = None, extra_targets: list[Target] | None = None
    ) -> None:
        from chalicelib import backend
        from chalicelib.config import settings

        self.home = home
        self.store = backend.local_bus_store()
        config = settings()
        targets = builtin_targets(home) + app_targets() + (extra_targets or [])
        self.dispatcher = Dispatcher(
            self.store,
            targets,
            workers=workers or config.bus_workers,
            max_attempts=config.bus_max_attempts,
            base_delay=config.bus_base_delay_ms / 1000,
        )
        self.pruner = Pruner(
            home, RetentionPolicy.from_settings(), config.prune_interval_minutes * 60
        )

    @property
    def target_names(self) -> list[str]:
        return sorted(self.dispatcher.targets)

    def start(self) -> Runtime:
        self.dispatcher.start()
        self.pruner.start()
        return self

    def stop(self) -> None:
        self.pruner.stop()
        self.dispatcher.stop()

    def wait_idle(self, timeout: float = 120.0) -> bool:
        return self.dispatcher.wait_idle(timeout)

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
