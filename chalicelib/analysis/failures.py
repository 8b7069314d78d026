"""One wording for a failure, wherever it was caught: in a capability, a step, or by Step
Functions' Catch. It goes into Analysis.Errors, MESSAGE_ANALYSIS_FAILED.Reason and alerts."""

from __future__ import annotations

import json
from typing import Any

MAX_ERROR_TEXT = 300  # characters of one failure's wording, in Errors and Reason


def failure_text(failure: BaseException | dict[str, Any] | str | None) -> str:
    """A failure in one wording, "ErrorType: message" on one bounded line, wherever it was
    caught: an exception here, or Step Functions' {"Error", "Cause"}, whose Cause for a
    Lambda error is the runtime's JSON (errorType, errorMessage, stackTrace). The stack
    trace is dropped: it belongs in the function's logs, not in the lake or an alert."""
    if isinstance(failure, BaseException):
        kind, message = type(failure).__name__, str(failure)
    elif isinstance(failure, dict):
        kind, message = _caught(failure)
    else:
        kind, message = "", str(failure or "analysis failed")
    text = f"{kind}: {message}" if kind and message else kind or message
    return " ".join(text.split())[:MAX_ERROR_TEXT]


def _caught(failure: dict[str, Any]) -> tuple[str, str]:
    """(type, message) of a failure Step Functions caught."""
    kind, cause = str(failure.get("Error") or "Error"), failure.get("Cause") or ""
    try:
        runtime = json.loads(cause) if isinstance(cause, str) else cause
    except ValueError:  # not the Lambda runtime's JSON: a sentence of Step Functions'
        return kind, cause
    if isinstance(runtime, dict):
        return str(runtime.get("errorType") or kind), str(runtime.get("errorMessage") or "")
    return kind, str(cause)
