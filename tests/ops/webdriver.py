"""Just enough of the W3C WebDriver protocol to drive headless Chromium via chromedriver.

Debian's `chromium` and `chromium-driver` packages; no Selenium (its current releases need
a newer certifi than the registry has) and no browser download at test time.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise AssertionError(
            f"{binary} is not installed: apt-get install -y chromium chromium-driver"
        )
    return path


class Chromium:
    """A chromedriver process and one headless Chromium session, closed on exit."""

    def __init__(self, user_data_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.driver = subprocess.Popen(
            [require("chromedriver"), f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_ready()
            options = {
                "binary": require("chromium"),
                "args": [*CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}"],
            }
            capabilities = {"browserName": "chrome", "goog:chromeOptions": options}
            created = self._call(
                "POST", "/session", {"capabilities": {"alwaysMatch": capabilities}}
            )
        except BaseException:
            self._stop_driver()
            raise
        self.session = f"/session/{created['sessionId']}"

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self._call("GET", "/status").get("ready"):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("chromedriver did not start")

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"WebDriver {method} {path}: {exc.read().decode()}") from exc

    def get(self, url: str) -> None:
        self._call("POST", f"{self.session}/url", {"url": url})

    def script(self, source: str, *args: Any) -> Any:
        return self._call("POST", f"{self.session}/execute/sync", {"script": source, "args": args})

    def wait_for(self, source: str, timeout: float = 60, *args: Any) -> Any:
        """Run `source` until it returns something truthy; returns that."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.script(source, *args)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.25)

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._call("GET", f"{self.session}/screenshot")))

    def close(self) -> None:
        try:
            self._call("DELETE", self.session)
        finally:
            self._stop_driver()

    def _stop_driver(self) -> None:
        self.driver.terminate()
        self.driver.wait(timeout=20)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
