"""X's documentation examples (tests/fixtures/x-docs/), loaded as deliveries.

Account Activity examples are published with `<Tweet Object>`, `<User Object>` or `{ ... }`
where an object goes; `aaa()` fills them with objects from X's data dictionary, and changes
nothing else.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

XDOCS = Path(__file__).resolve().parents[1] / "fixtures" / "x-docs"

# The subscribed account of each page's examples.
XAA_USER = "1111111111111111111"  # "ExampleUser" on the X Activity page

_TWEET = re.compile(r"\{\s*<Tweet Object>\s*\}")
_USER = re.compile(r"\{\s*<User Object>\s*\}|\{ \.\.\. \}")


def xaa_types() -> list[str]:
    """Every event type with an example on the X Activity page."""
    return sorted(p.stem for p in (XDOCS / "xaa").glob("*.json") if p.stem != "envelope")


def xaa(name: str) -> dict[str, Any]:
    return json.loads((XDOCS / "xaa" / f"{name}.json").read_text())


def aaa_names() -> list[str]:
    return sorted(p.name.split(".")[0] for p in (XDOCS / "aaa").iterdir())


def v1_tweet(name: str) -> dict[str, Any]:
    """A v1.1 Post object from the enterprise data dictionary's example payloads."""
    return json.loads((XDOCS / "data-dictionary" / "v1" / f"{name}.json").read_text())


def v1_user() -> dict[str, Any]:
    """The data dictionary's example user object, published as a bare `"user": {...}` member."""
    text = (XDOCS / "data-dictionary" / "v1" / "user.template.txt").read_text()
    return json.loads("{" + text + "}")["user"]


def v1_tweet_names() -> list[str]:
    return sorted(p.stem for p in (XDOCS / "data-dictionary" / "v1").glob("*.json"))


def aaa(name: str, tweet: str = "post") -> dict[str, Any]:
    """One Account Activity example; placeholders filled with the data dictionary's `tweet`
    and its example user."""
    folder = XDOCS / "aaa"
    path = folder / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    text = (folder / f"{name}.template.txt").read_text()
    text = _TWEET.sub(lambda _: json.dumps(v1_tweet(tweet)), text)
    text = _USER.sub(lambda _: json.dumps(v1_user()), text)
    return json.loads(text)
