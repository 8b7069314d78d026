"""The analysis workflow's time budget: every retry priced inside the execution limit.

An Express execution that runs past its limit ends TIMED_OUT and publishes nothing, so the
workflow must always reach PublishAnalysis or PublishAnalysisFailed first. Each task gets a
TimeoutSeconds (its Lambda gets the same timeout, so a timed-out attempt is not left
running beside its retry) and retriers whose worst case is known; `worst_case_seconds`
prices a definition's longest path, and the stack is built only if that fits the limit.

The price of one task is every attempt running to its timeout, plus every retry's longest
backoff (full jitter waits at most the computed delay). The one exception is the retrier of
invocations Lambda refused (throttled, or its own fault): a refused invocation never ran,
so its attempts cost REFUSED_INVOKE_SECONDS, not the timeout. A Map runs its items in
rounds of MaxConcurrency; a Parallel waits for its slowest branch; a caught failure goes
on to the Catch's target, so a task's worst case is followed by the longer of its two ways
out.

Pure Python, no aws_cdk: the arithmetic is tested on its own and on the synthesized
definition.
"""

from __future__ import annotations

import math
from typing import Any

EXECUTION_TIMEOUT_SECONDS = 300  # Express's maximum (five minutes)
MAX_IMAGES = 4  # X attaches at most four photos to a post (a DM: one)
IMAGE_CONCURRENCY = 2  # Rekognition's default TPS is low; the local orchestrator uses 2 too

# Each step's TimeoutSeconds, which is also its Lambda's timeout.
STEP_TIMEOUT_SECONDS = {
    "download_media": 30,
    "analyse_text": 20,
    "analyse_image": 25,
    "publish_analysis": 10,
    "publish_analysis_failed": 10,
}

# Lambda refused the invocation: throttled, or a fault of the Lambda service itself. The
# function never ran, so these are retried longer (with jittered backoff) at little cost.
INVOKE_REFUSALS = (
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
)
REFUSED_INVOKE_SECONDS = 1.0  # what one refused invocation is priced at
REFUSED_RETRY = {"interval": 2, "max_attempts": 3, "backoff_rate": 2.0, "max_delay": 8}
# Anything else (the function's own error, a timeout, throttling the adapters' own retries
# could not wait out) is tried once more.
FAILED_RETRY = {"interval": 2, "max_attempts": 1, "backoff_rate": 2.0}

# Step Functions' defaults for a Retrier's fields (Amazon States Language).
_DEFAULT_INTERVAL, _DEFAULT_ATTEMPTS, _DEFAULT_BACKOFF = 1, 3, 2.0
# A Task without TimeoutSeconds waits up to 99999999 s (Amazon States Language).
_DEFAULT_TASK_TIMEOUT = 99_999_999


def retry_delays(retrier: dict[str, Any]) -> list[float]:
    """The longest wait before each retry of one ASL Retrier."""
    interval = retrier.get("IntervalSeconds", _DEFAULT_INTERVAL)
    attempts = retrier.get("MaxAttempts", _DEFAULT_ATTEMPTS)
    rate = retrier.get("BackoffRate", _DEFAULT_BACKOFF)
    cap = retrier.get("MaxDelaySeconds", math.inf)
    return [min(interval * rate**n, cap) for n in range(attempts)]


def task_worst_seconds(task: dict[str, Any]) -> float:
    """One Task state: every attempt and every backoff, at their longest."""
    timeout = task.get("TimeoutSeconds", _DEFAULT_TASK_TIMEOUT)
    total = timeout  # the first attempt
    for retrier in task.get("Retry", []):
        delays = retry_delays(retrier)
        refused = set(retrier["ErrorEquals"]) <= set(INVOKE_REFUSALS)
        attempt = REFUSED_INVOKE_SECONDS if refused else timeout
        total += sum(delays) + attempt * len(delays)
    return total


def worst_case_seconds(definition: dict[str, Any], items: int = MAX_IMAGES) -> float:
    """The longest path through an ASL definition (no loops), with `items` per Map."""
    return _from(definition["StartAt"], definition["States"], items)


def _from(name: str, states: dict[str, Any], items: int) -> float:
    state = states[name]
    own = _own_seconds(state, items)
    ways_out = [state["Next"]] if "Next" in state else []
    ways_out += [catch["Next"] for catch in state.get("Catch", [])]
    return own + max((_from(n, states, items) for n in ways_out), default=0.0)


def _own_seconds(state: dict[str, Any], items: int) -> float:
    kind = state["Type"]
    if kind == "Task":
        return task_worst_seconds(state)
    if kind == "Parallel":
        return max(worst_case_seconds(branch, items) for branch in state["Branches"])
    if kind == "Map":
        processor = state.get("ItemProcessor") or state["Iterator"]
        concurrency = state.get("MaxConcurrency", 0) or items  # 0: no limit
        return math.ceil(items / concurrency) * worst_case_seconds(processor, items)
    if kind in ("Wait", "Choice"):
        raise ValueError(f"a {kind} state cannot be priced here")
    return 0.0  # Pass, Choice (no loops here), Succeed, Fail
