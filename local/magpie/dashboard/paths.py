"""Which paths the dashboard answers; the server and the webhook-call counts ask it too."""

from __future__ import annotations

from urllib.parse import urlsplit

# Browsers ask for it on their own; answered here, it is not counted as a webhook call.
FAVICON = "/favicon.ico"


def wants(path: str) -> bool:
    """True for the paths the dashboard answers; everything else goes to the webhook app."""
    route = urlsplit(path).path
    return route in ("/dashboard", FAVICON) or route.startswith(("/dashboard/", "/api/"))
