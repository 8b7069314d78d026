"""LocalStack's Lambda runtime executor, with each execution environment a host process.

LocalStack's only built-in executor runs functions in docker, which this machine lacks.
Selected with LAMBDA_RUNTIME_EXECUTOR=magpie-host (plugins.py registers it); runs zip
functions of the runtime of the interpreter named by MAGPIE_LAMBDA_PYTHON (host_process.py
does the work; this class only adapts it to LocalStack's interface).
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

from localstack import config
from localstack.services.lambda_.invocation.executor_endpoint import NAMESPACE
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import RuntimeExecutor

from magpie_localstack.host_process import (
    FunctionProcess,
    check_runtime,
    framed_log,
    interpreter_runtime,
)

HOST = "127.0.0.1"


@functools.cache
def host_python() -> tuple[str, str]:
    """The interpreter functions run in, and the runtime it stands in for."""
    python = os.environ.get("MAGPIE_LAMBDA_PYTHON", "")
    if not python:
        raise RuntimeError("MAGPIE_LAMBDA_PYTHON must name the functions' host interpreter")
    return python, interpreter_runtime(python)


def log_file(function_name: str) -> Path | None:
    folder = os.environ.get("MAGPIE_LAMBDA_LOGS")
    return Path(folder) / f"{function_name}.log" if folder else None


class HostRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id, function_version)
        self.process: FunctionProcess | None = None

    def start(self, env_vars: dict[str, str]) -> None:
        cfg = self.function_version.config
        self.process = FunctionProcess(
            python=host_python()[0],
            task_root=str(cfg.code.get_unzipped_code_location()),
            layers=[str(layer.code.get_unzipped_code_location()) for layer in cfg.layers],
            environment={k: str(v) for k, v in env_vars.items()},
            timeout_seconds=float(cfg.timeout),
            log_file=log_file(self.function_version.id.function_name),
        )
        self.process.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def get_address(self) -> str:
        return HOST

    def get_endpoint_from_executor(self) -> str:
        return HOST

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://{HOST}:{port}{NAMESPACE}/{self.id}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        assert self.process is not None, "invoked before start"
        request_id = payload["invoke-id"]
        started = time.monotonic()
        outcome = self.process.invoke(
            request_id, payload["payload"], payload["invoked-function-arn"]
        )
        logs = framed_log(request_id, outcome.logs, time.monotonic() - started)
        return InvocationResult(
            request_id, outcome.payload.encode(), is_error=outcome.is_error, logs=logs
        )

    def get_logs(self) -> str:
        return self.process.logs() if self.process is not None else ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        cfg = function_version.config
        check_runtime(cfg.runtime, str(cfg.package_type), host_python()[1])
        cfg.code.prepare_for_execution()
        for layer in cfg.layers:
            layer.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        """Nothing to clean: the unzipped code is LocalStack's own cache."""

    @classmethod
    def validate_environment(cls) -> bool:
        return bool(os.environ.get("MAGPIE_LAMBDA_PYTHON"))
