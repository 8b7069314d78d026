"""Load the four Chalice apps by path and read their `on_cw_event` subscriptions.

Every app module is named `app`, so each is loaded under a unique module name. The local bus
routes with the very patterns the handlers declare, as EventBridge rules would on AWS.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
APP_DIRS = {
    "core": ROOT,
    "ingress": ROOT / "ingress",
    "responders": ROOT / "responders",
    "egress": ROOT / "egress",
}


@dataclass(frozen=True)
class Subscription:
    target: str
    pattern: dict[str, Any]
    handler: Callable[[dict[str, Any], Any], Any]


def load_app(name: str) -> ModuleType:
    """Import <app dir>/app.py as module `magpie_app_<name>` (cached)."""
    module_name = f"magpie_app_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = APP_DIRS[name] / "app.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load Chalice app {name} from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def available_apps() -> list[str]:
    return [name for name, folder in APP_DIRS.items() if (folder / "app.py").exists()]


def event_subscriptions(names: list[str] | None = None) -> list[Subscription]:
    """Every `on_cw_event` handler of the given apps (default: all that exist)."""
    from chalice.app import CloudWatchEventConfig

    subscriptions = []
    for name in names or available_apps():
        module = load_app(name)
        for source in module.app.event_sources:
            if not isinstance(source, CloudWatchEventConfig):
                continue
            function_name = source.handler_string.split(".", 1)[1]
            subscriptions.append(
                Subscription(
                    f"{name}.{source.name}", source.event_pattern, getattr(module, function_name)
                )
            )
    return subscriptions
