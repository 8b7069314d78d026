"""The host-process Lambda runner: handler answers, AWS's error shapes, the timeout enforced."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from magpie_localstack.host_process import (
    FunctionProcess,
    UnsupportedRuntime,
    check_runtime,
    framed_log,
    interpreter_runtime,
)

HANDLER = """
import os, sys, time
import shared
started = time.time()
def handler(event, context):
    print("handling", event.get("n"))
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        raise ValueError("asked to fail")
    if event.get("exit"):
        os._exit(3)
    if event.get("unserialisable"):
        return {1, 2}
    return {
        "n": event.get("n"),
        "started": started,
        "layer": shared.NAME,
        "remaining": context.get_remaining_time_in_millis(),
        "request": context.aws_request_id,
        "task_root": os.environ["LAMBDA_TASK_ROOT"],
        "secret": os.environ.get("HOST_ONLY_SECRET"),
    }
"""


@pytest.fixture
def function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FunctionProcess:
    code, layer = tmp_path / "code", tmp_path / "layer"
    (code).mkdir()
    (layer / "python").mkdir(parents=True)
    (code / "h.py").write_text(HANDLER)
    (layer / "python" / "shared.py").write_text("NAME = 'from the layer'\n")
    monkeypatch.setenv("HOST_ONLY_SECRET", "must not leak")
    process = FunctionProcess(
        python=sys.executable,
        task_root=str(code),
        layers=[str(layer)],
        environment={"_HANDLER": "h.handler", "AWS_LAMBDA_FUNCTION_NAME": "f"},
        timeout_seconds=2.0,
        log_file=tmp_path / "f.log",
    )
    yield process
    process.stop()


def invoke(function: FunctionProcess, event: dict, request_id: str = "r1"):
    return function.invoke(request_id, json.dumps(event), "arn:aws:lambda:us-east-1:0:function:f")


def test_a_warm_process_answers_each_invocation_with_the_handlers_result(function) -> None:
    first = invoke(function, {"n": 1})
    second = invoke(function, {"n": 2}, "r2")

    assert not first.is_error and not second.is_error
    one, two = json.loads(first.payload), json.loads(second.payload)
    assert (one["n"], two["n"]) == (1, 2)
    assert one["started"] == two["started"]  # imported once: a warm environment
    assert one["layer"] == "from the layer"
    assert two["request"] == "r2"
    assert 0 < one["remaining"] <= 2000
    assert one["secret"] is None  # the host's environment stays out
    assert "handling 2" in second.logs and "handling 1" not in second.logs


def test_a_raised_exception_is_answered_in_the_runtimes_error_shape(function) -> None:
    outcome = invoke(function, {"fail": True})

    assert outcome.is_error
    error = json.loads(outcome.payload)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "asked to fail"
    assert any("h.py" in line for line in error["stackTrace"])
    assert not any("bootstrap.py" in line for line in error["stackTrace"])
    assert "Traceback" in outcome.logs


def test_an_invocation_past_the_timeout_is_timed_out_and_the_next_starts_cold(function) -> None:
    warm = json.loads(invoke(function, {"n": 1}).payload)
    started = time.monotonic()

    outcome = invoke(function, {"sleep": 30}, "slow")
    elapsed = time.monotonic() - started
    after = invoke(function, {"n": 3})

    assert outcome.is_error
    assert json.loads(outcome.payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: slow Error: Task timed out after 2.00 seconds",
    }
    assert elapsed < 10
    assert not after.is_error
    assert json.loads(after.payload)["started"] != warm["started"]  # a fresh process


def test_a_process_that_dies_mid_invocation_is_a_runtime_exit_error(function) -> None:
    outcome = invoke(function, {"exit": True})

    assert outcome.is_error
    assert json.loads(outcome.payload)["errorType"] == "Runtime.ExitError"
    assert not invoke(function, {"n": 4}).is_error


def test_a_result_that_is_not_json_is_a_marshal_error(function) -> None:
    outcome = invoke(function, {"unserialisable": True})

    assert json.loads(outcome.payload)["errorType"] == "Runtime.MarshalError"


def _function_of(tmp_path: Path, source: str) -> FunctionProcess:
    """A function whose module h.py is `source`, with no layer."""
    (tmp_path / "h.py").write_text(source)
    return FunctionProcess(
        python=sys.executable,
        task_root=str(tmp_path),
        layers=[],
        environment={"_HANDLER": "h.handler"},
        timeout_seconds=5.0,
    )


def test_a_handler_that_cannot_be_imported_fails_every_invocation(tmp_path: Path) -> None:
    process = _function_of(tmp_path, "import not_a_module_anywhere\n")
    try:
        outcomes = [invoke(process, {}), invoke(process, {})]
    finally:
        process.stop()

    for outcome in outcomes:
        error = json.loads(outcome.payload)
        assert outcome.is_error and error["errorType"] == "Runtime.ImportModuleError"
        assert "not_a_module_anywhere" in error["errorMessage"]


def test_the_function_log_is_written_to_its_file(function, tmp_path: Path) -> None:
    invoke(function, {"n": 7})
    function.stop()

    assert "handling 7" in (tmp_path / "f.log").read_text()


def test_only_zip_functions_of_the_host_interpreters_runtime_are_accepted() -> None:
    host = interpreter_runtime(sys.executable)

    assert host == f"python{sys.version_info.major}.{sys.version_info.minor}"
    check_runtime(host, "Zip", host)
    with pytest.raises(UnsupportedRuntime, match=r"python3\.9"):
        check_runtime("python3.9", "Zip", host)
    with pytest.raises(UnsupportedRuntime, match="Image"):
        check_runtime(None, "Image", host)


def test_an_invocations_log_is_framed_as_lambda_frames_it() -> None:
    log = framed_log("r9", "hello\nworld", 0.0123)

    assert log.splitlines() == [
        "START RequestId: r9 Version: $LATEST",
        "hello",
        "world",
        "END RequestId: r9",
        "REPORT RequestId: r9\tDuration: 12.30 ms",
    ]


def test_an_init_that_hangs_is_ended_and_reported(tmp_path: Path, monkeypatch) -> None:
    from magpie_localstack import host_process

    monkeypatch.setattr(host_process, "INIT_TIMEOUT_SECONDS", 1.0)
    process = _function_of(tmp_path, "import time\ntime.sleep(60)\ndef handler(e, c):\n    pass\n")
    started = time.monotonic()
    try:
        outcome = invoke(process, {})
    finally:
        process.stop()

    assert time.monotonic() - started < 10
    assert json.loads(outcome.payload)["errorType"] == "Runtime.ExitError"
    assert not process.running
