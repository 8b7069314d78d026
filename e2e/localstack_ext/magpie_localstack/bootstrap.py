"""A Lambda runtime for one function, run as a host process (`python -I bootstrap.py`).

LocalStack's own runtime is a container image; here the function runs in a host interpreter
instead (host_process.py starts this file with it). What AWS's Python runtime does, in small:
import `_HANDLER` once from LAMBDA_TASK_ROOT (and the layers' `python` folders), then answer
one invocation per line of stdin, each answer one line on the original stdout. The function's
own prints and logs go to stderr, which is the function's log.

Standalone on purpose: it runs in the function's interpreter, which has neither LocalStack
nor this package, so it imports only the standard library.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any, TextIO


class LambdaContext:
    """The attributes and method of AWS's context object that handlers read."""

    def __init__(self, request: dict[str, Any]) -> None:
        env = os.environ
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.invoked_function_arn = request.get("invoked_function_arn", "")
        self.aws_request_id = request["request_id"]
        self.identity = None
        self.client_context = None
        self._deadline = float(request["deadline"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def error_payload(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """The error object AWS's Python runtime returns (what Step Functions reads as Cause)."""
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        # the function's frames only, as AWS's runtime reports them
        "stackTrace": traceback.format_list(
            [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
        ),
    }


def load_handler(handler: str, task_root: str, layer_paths: list[str]) -> Any:
    """`module.function` from the task root first, then the layers (as AWS orders them)."""
    sys.path[:0] = [task_root, *layer_paths]
    module_name, _, function_name = handler.rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, function_name)


def layer_paths(opt_dirs: list[str]) -> list[str]:
    """Where AWS's Python runtime finds a layer's packages under /opt."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    paths = []
    for opt in opt_dirs:
        paths += [
            os.path.join(opt, "python"),
            os.path.join(opt, "python", "lib", version, "site-packages"),
        ]
    return paths


def serve(channel: TextIO, requests: TextIO) -> None:
    try:
        handler = load_handler(
            os.environ["_HANDLER"],
            os.environ["LAMBDA_TASK_ROOT"],
            layer_paths(json.loads(os.environ.get("MAGPIE_LAMBDA_LAYERS", "[]"))),
        )
    except Exception as exc:  # what AWS reports as Runtime.ImportModuleError, on every invoke
        answer(channel, {"init_error": error_payload(exc, "Runtime.ImportModuleError")})
        return
    answer(channel, {"ready": True})
    for line in requests:
        request = json.loads(line)
        answer(channel, invoke(handler, request))


def invoke(handler: Any, request: dict[str, Any]) -> dict[str, Any]:
    try:
        result = handler(json.loads(request["payload"]), LambdaContext(request))
    except Exception as exc:  # the function's failure is its answer, as on AWS
        traceback.print_exc()
        return {"error": error_payload(exc)}
    try:
        return {"result": json.dumps(result)}
    except (TypeError, ValueError) as exc:
        return {"error": error_payload(exc, "Runtime.MarshalError")}


# Ends an invocation's log: the runner takes the log up to here as that invocation's.
END_OF_LOG = "\x1e"


def answer(channel: TextIO, message: dict[str, Any]) -> None:
    sys.stdout.flush()
    sys.stderr.write(END_OF_LOG + "\n")
    sys.stderr.flush()
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def main() -> None:
    # The answers keep the real stdout; anything the function prints goes to its log.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    serve(channel, sys.stdin)


if __name__ == "__main__":
    main()
