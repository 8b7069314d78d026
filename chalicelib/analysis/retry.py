"""Retrying AWS calls on throttling, and the error a switched-off capability raises.

botocore is never imported here: this module is shared by the local backend, which must not
need it, so botocore errors are recognised by class name and by the `response` attribute
that every botocore `ClientError` carries.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from chalicelib.errors import ConfigurationError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Error codes AWS services answer with when the caller should slow down and try again.
# Comprehend says InternalServerException, Rekognition InternalServerError; both are transient.
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalServerException",
    }
)

# botocore's transport errors that are worth another attempt.
_TRANSIENT_NETWORK_ERRORS = frozenset(
    {"ReadTimeoutError", "ConnectTimeoutError", "EndpointConnectionError"}
)


class CapabilityDisabled(ConfigurationError, RuntimeError):
    """An analysis capability that is switched off (or not configured) was asked for.

    The caller records it as a capability error and carries on with the others."""

    def __init__(self, capability: str, reason: str = "") -> None:
        self.capability = capability
        detail = f": {reason}" if reason else ""
        super().__init__(f"capability {capability!r} is disabled{detail}")


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def aws_error_code(exc: BaseException) -> str | None:
    """The `Error.Code` of a botocore ClientError, or None for any other exception."""
    if "ClientError" not in _class_names(exc):
        return None
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return code if isinstance(code, str) else None


def is_throttling(exc: BaseException) -> bool:
    """True when `exc` is a throttling/transient AWS error that a later attempt may clear."""
    code = aws_error_code(exc)
    if code is not None:
        return code in THROTTLING_CODES
    return bool(_class_names(exc) & _TRANSIENT_NETWORK_ERRORS)


def _backoff(attempt: int, base_delay: float, max_delay: float) -> float:
    """Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): a uniform
    draw below the capped exponential, so many throttled Lambdas do not retry in step."""
    cap = min(max_delay, base_delay * 2**attempt)
    return random.uniform(0.0, cap)


def call_with_retries(
    fn: Callable[[], T],
    *,
    attempts: int = 4,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
    retry_on: Callable[[BaseException], bool],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn` up to `attempts` times, sleeping with exponential backoff and full jitter
    between attempts while `retry_on(error)` says the error is transient.

    Any other error, or the last attempt's error, propagates unchanged."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    for attempt in range(attempts - 1):
        try:
            return fn()
        except Exception as exc:
            if not retry_on(exc):
                raise
            delay = _backoff(attempt, base_delay, max_delay)
            logger.warning(
                "transient error (attempt %d of %d), retrying in %.2fs: %s",
                attempt + 1,
                attempts,
                delay,
                exc,
            )
            sleep(delay)
    return fn()
