"""LocalStack on the host, on loopback only: started, waited for, and always stopped.

LocalStack runs from its own virtualenv (Python 3.13, e2e/requirements-localstack.txt) with
Magpie's extension installed (e2e/localstack_ext): functions run as host processes in the
project's interpreter and DynamoDB is dynalite. Everything it writes stays in one work folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# What the stack uses; the health check waits until each is available.
SERVICES = (
    "cloudformation",
    "dynamodb",
    "events",
    "firehose",
    "iam",
    "lambda",
    "logs",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "stepfunctions",
    "sts",
)
START_TIMEOUT_SECONDS = 90.0
# SIGTERM once left LocalStack hanging: after this long it is killed.
STOP_GRACE_SECONDS = 15.0


class EmulatorError(RuntimeError):
    """LocalStack did not start (its log's tail says why)."""


def free_port() -> int:
    """A loopback port nobody listens on now (LocalStack needs the number before it binds)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Emulator:
    python: Path  # LocalStack's interpreter
    lambda_python: Path  # the functions' interpreter
    dynalite: Path
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "localstack.log"

    @property
    def lambda_logs(self) -> Path:
        return self.workdir / "lambda-logs"

    def environment(self) -> dict[str, str]:
        listen = f"127.0.0.1:{self.port}"
        host = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        return host | {
            "GATEWAY_LISTEN": listen,
            "LOCALSTACK_HOST": listen,
            "DNS_ADDRESS": "0",  # no DNS server: nothing here resolves through it
            "DISABLE_EVENTS": "1",  # no analytics
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "FILESYSTEM_ROOT": str(self.workdir / "filesystem"),
            "TMPDIR": str(self.workdir / "tmp"),  # the functions' unzipped code goes here
            "LAMBDA_RUNTIME_EXECUTOR": "magpie-host",
            "MAGPIE_LAMBDA_PYTHON": str(self.lambda_python),
            "MAGPIE_LAMBDA_LOGS": str(self.lambda_logs),
            "MAGPIE_DYNALITE": str(self.dynalite),
            # Lex, Athena and Glue deploy as placeholders (patches.py gives them ARNs).
            "CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES": "1",
        }

    def start(self) -> None:
        for folder in (self.workdir / "tmp", self.lambda_logs):
            folder.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our interpreter)
                # faulthandler: a hung stop's SIGABRT writes every thread's stack to the log
                [str(self.python), "-X", "faulthandler", "-m", "localstack.runtime.main"],
                env=self.environment(),
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one group: stopping it ends dynalite and functions too
            )
        try:
            self.wait_until_healthy()
        except BaseException:
            self.stop()
            raise

    def wait_until_healthy(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        missing: list[str] = list(SERVICES)
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise EmulatorError(
                    f"LocalStack exited ({self.process.returncode}):\n{self.tail()}"
                )
            missing = self._unavailable()
            if not missing:
                return
            time.sleep(0.5)
        raise EmulatorError(
            f"LocalStack not healthy after {timeout:.0f} s {missing}:\n{self.tail()}"
        )

    def _unavailable(self) -> list[str]:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/_localstack/health", timeout=2) as r:  # noqa: S310 (loopback)
                services = json.load(r).get("services", {})
        except (urllib.error.URLError, OSError, ValueError):
            return list(SERVICES)
        return [s for s in SERVICES if services.get(s) not in ("available", "running")]

    def stop(self) -> None:
        """SIGTERM to LocalStack's process group; if it is still there after the grace,
        SIGABRT (its threads' stacks to the log), then SIGKILL."""
        process, self.process = self.process, None
        if process is None:
            return
        for send, sig, wait in (
            (os.killpg, signal.SIGTERM, STOP_GRACE_SECONDS),
            (os.kill, signal.SIGABRT, 5.0),  # LocalStack alone: where it hung, to the log
            (os.killpg, signal.SIGKILL, 10.0),
        ):
            try:
                send(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # The group outlives its leader while a child lingers.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
