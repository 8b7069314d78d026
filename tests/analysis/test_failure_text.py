"""One wording for a failed step, wherever it was caught: "ErrorType: message", bounded."""

from __future__ import annotations

import json

import pytest

from chalicelib.analysis.failures import MAX_ERROR_TEXT, failure_text

# What Step Functions' Catch passes for a Lambda that raised: Error is the errorType, Cause
# the Python runtime's JSON answer, stack trace included.
RUNTIME_CAUSE = json.dumps(
    {
        "errorMessage": "An error occurred (ThrottlingException) when calling DetectLabels",
        "errorType": "ThrottlingException",
        "requestId": "7c5e5c1a-8a1f-4b8e-9d0c-1f1f6a3f2f10",
        "stackTrace": [
            '  File "/var/task/app.py", line 27, in analyse_image\n'
            "    return steps.analyse_image(event)\n",
            '  File "/var/task/chalicelib/analysis/steps.py", line 140, in analyse_image\n',
        ],
    }
)


@pytest.mark.parametrize(
    ("failure", "text"),
    [
        (RuntimeError("analyse_text crashed"), "RuntimeError: analyse_text crashed"),
        (
            {"Error": "ThrottlingException", "Cause": RUNTIME_CAUSE},
            "ThrottlingException: An error occurred (ThrottlingException) when calling "
            "DetectLabels",
        ),
        (  # the task's own timeout: Step Functions writes a sentence, not JSON
            {"Error": "States.Timeout", "Cause": "Task timed out after 25 seconds."},
            "States.Timeout: Task timed out after 25 seconds.",
        ),
        (  # Lambda's timeout: JSON without an errorType
            {
                "Error": "Sandbox.Timedout",
                "Cause": json.dumps({"errorMessage": "Task timed out after 25.00 seconds"}),
            },
            "Sandbox.Timedout: Task timed out after 25.00 seconds",
        ),
        ({"Error": "States.Timeout"}, "States.Timeout"),
        ("ValueError: said before", "ValueError: said before"),
        (None, "analysis failed"),
    ],
)
def test_every_failure_reads_type_colon_message(failure, text):
    assert failure_text(failure) == text


def test_no_stack_trace_survives():
    text = failure_text({"Error": "ThrottlingException", "Cause": RUNTIME_CAUSE})
    assert "stackTrace" not in text and "/var/task" not in text and "requestId" not in text


def test_the_wording_is_one_bounded_line():
    text = failure_text(ValueError("line one\nline two\t" + "x" * 1000))
    assert "\n" not in text and "\t" not in text
    assert text.startswith("ValueError: line one line two x")
    assert len(text) == MAX_ERROR_TEXT
