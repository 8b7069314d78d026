"""One Lambda execution environment as a host process, with the function's timeout enforced.

The process runs bootstrap.py in a host interpreter (the project's virtualenv, whose Python
matches the functions' runtime): it imports the handler once, then answers invocations one
at a time over a pipe, like a warm Lambda container. An invocation that outlives the
function's timeout is answered as AWS answers it (`Sandbox.Timedout`) and its process is
killed; the next invocation starts a fresh one (a cold start, as on AWS).

Imports nothing of LocalStack, so the main virtualenv's tests exercise it directly.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
# The host environment a function may see; everything else comes from its own configuration.
HOST_VARIABLES = ("PATH", "LANG", "LC_ALL", "HOME", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
# Lambda's init phase may take 10 s; the local models load slower on a busy 2-core host.
INIT_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 2.0
END_OF_LOG = "\x1e\n"  # bootstrap.py's line before each answer
LOG_CATCH_UP_SECONDS = 2.0


@dataclass(frozen=True)
class Outcome:
    """One invocation's answer: the payload (JSON text) and whether it is an error."""

    payload: str
    is_error: bool
    logs: str


class FunctionProcess:
    """A function's handler, loaded once in a host process and invoked over a pipe."""

    def __init__(
        self,
        *,
        python: str,
        task_root: str,
        layers: list[str],
        environment: Mapping[str, str],
        timeout_seconds: float,
        log_file: Path | None = None,
    ) -> None:
        self.python = python
        self.task_root = task_root
        self.layers = layers
        self.environment = dict(environment)
        self.timeout_seconds = timeout_seconds
        self.log_file = log_file
        self._process: subprocess.Popen[str] | None = None
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._log_lines: list[str] = []
        self._log_lock = threading.Condition()
        self._log_ends = 0  # END_OF_LOG lines read so far
        self._readers: list[threading.Thread] = []
        self._init_error: dict[str, Any] | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the process and wait until the handler is imported (or failed to be)."""
        env = {k: os.environ[k] for k in HOST_VARIABLES if k in os.environ}
        env |= self.environment
        env |= {"LAMBDA_TASK_ROOT": self.task_root, "MAGPIE_LAMBDA_LAYERS": json.dumps(self.layers)}
        self._answers = queue.Queue()
        self._init_error = None
        self._readers = []
        _, ends = self._log_mark()
        self._process = subprocess.Popen(  # noqa: S603 (our interpreter, our bootstrap)
            [self.python, "-I", "-u", str(BOOTSTRAP)],
            cwd=self.task_root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._follow(self._process.stdout, self._read_answers)
        self._follow(self._process.stderr, self._read_logs)
        first = self._next_answer(INIT_TIMEOUT_SECONDS)
        if first is None:
            self.stop()
            self._init_error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": "Runtime exited or hung during init (see the function's log)",
            }
            return
        self._wait_for_log_end(ends + 1)
        self._init_error = first.get("init_error")

    def stop(self) -> None:
        """Terminate the process; kill it if it does not go within the grace period.

        It stays in the emulator's process group, so stopping the emulator ends it too."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for reader in self._readers:  # to the end of its output, log file included
            reader.join(timeout=STOP_GRACE_SECONDS)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # --- invoking ------------------------------------------------------------------------

    def invoke(self, request_id: str, payload: str, invoked_function_arn: str) -> Outcome:
        """Run the handler on `payload` (JSON text) within the function's timeout."""
        if not self.running:
            self.start()
        mark, ends = self._log_mark()
        if self._init_error is not None:
            return self._outcome(json.dumps(self._init_error), True, mark)
        started = time.monotonic()
        request = {
            "request_id": request_id,
            "payload": payload,
            "invoked_function_arn": invoked_function_arn,
            "deadline": time.time() + self.timeout_seconds,
        }
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            self.stop()
            return self._outcome(json.dumps(exit_error(request_id)), True, mark)
        answer = self._next_answer(self.timeout_seconds)
        if answer is None:
            timed_out = time.monotonic() - started >= self.timeout_seconds
            self.stop()
            error = timeout_error(request_id, self.timeout_seconds) if timed_out else None
            return self._outcome(json.dumps(error or exit_error(request_id)), True, mark)
        self._wait_for_log_end(ends + 1)
        if "error" in answer:
            return self._outcome(json.dumps(answer["error"]), True, mark)
        return self._outcome(answer["result"], False, mark)

    def logs(self) -> str:
        with self._log_lock:
            return "".join(self._log_lines)

    # --- the pipes -----------------------------------------------------------------------

    def _next_answer(self, timeout: float) -> dict[str, Any] | None:
        """The next answer, or None when the process ended or `timeout` passed."""
        try:
            return self._answers.get(timeout=timeout)
        except queue.Empty:
            return None

    def _follow(self, stream: IO[str] | None, reader: Any) -> None:
        thread = threading.Thread(target=reader, args=(stream, self._answers), daemon=True)
        thread.start()
        self._readers.append(thread)

    @staticmethod
    def _read_answers(stream: IO[str], answers: queue.Queue[dict[str, Any] | None]) -> None:
        for line in stream:
            answers.put(json.loads(line))
        answers.put(None)  # the process ended

    def _read_logs(self, stream: IO[str], _answers: object) -> None:
        sink = self.log_file.open("a", encoding="utf-8") if self.log_file else None
        try:
            for line in stream:
                with self._log_lock:
                    if line == END_OF_LOG:
                        self._log_ends += 1
                        self._log_lock.notify_all()
                        continue
                    self._log_lines.append(line)
                if sink is not None:
                    sink.write(line)
                    sink.flush()
        finally:
            if sink is not None:
                sink.close()

    def _log_mark(self) -> tuple[int, int]:
        with self._log_lock:
            return len(self._log_lines), self._log_ends

    def _wait_for_log_end(self, ends: int) -> None:
        """Until the log reader has read the invocation's END_OF_LOG (it lags the answer)."""
        with self._log_lock:
            self._log_lock.wait_for(lambda: self._log_ends >= ends, LOG_CATCH_UP_SECONDS)

    def _outcome(self, payload: str, is_error: bool, mark: int) -> Outcome:
        with self._log_lock:
            logs = "".join(self._log_lines[mark:])
        return Outcome(payload, is_error, logs)


def timeout_error(request_id: str, timeout_seconds: float) -> dict[str, str]:
    """AWS's answer for an invocation that outlived the function's timeout."""
    return {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after "
        f"{timeout_seconds:.2f} seconds",
    }


def exit_error(request_id: str) -> dict[str, str]:
    """AWS's answer when the runtime process dies during an invocation."""
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited without providing a reason",
    }


class UnsupportedRuntime(RuntimeError):
    """The function asks for a runtime the host interpreter is not."""


def interpreter_runtime(python: str) -> str:
    """The Lambda runtime name the host interpreter stands in for, e.g. `python3.11`."""
    version = subprocess.run(  # noqa: S603 (our interpreter)
        [python, "-I", "-c", "import sys; print('python%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return version.stdout.strip()


def check_runtime(runtime: str | None, package_type: str, host_runtime: str) -> None:
    """Only zip functions of the host interpreter's runtime can run here: say so early."""
    if package_type != "Zip":
        raise UnsupportedRuntime(f"{package_type} functions cannot run on the host")
    if runtime != host_runtime:
        raise UnsupportedRuntime(
            f"runtime {runtime} cannot run on the host interpreter ({host_runtime})"
        )


def framed_log(request_id: str, logs: str, seconds: float) -> str:
    """An invocation's log between the lines Lambda writes around every invocation."""
    if logs and not logs.endswith("\n"):
        logs += "\n"
    return (
        f"START RequestId: {request_id} Version: $LATEST\n{logs}END RequestId: {request_id}\n"
        f"REPORT RequestId: {request_id}\tDuration: {seconds * 1000:.2f} ms\n"
    )
