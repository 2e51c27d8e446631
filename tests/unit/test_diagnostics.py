"""The retry findings: counted for every operation or attempt affected, logged once per name.

``breaker_blind_to_async`` is tested with the async breaker calls (``test_pybreaker_async.py``) and in
the example under ``opentelemetry-instrument``; the two retry findings are tested here.
"""

from __future__ import annotations

import logging

import pybreaker
import pytest
import tenacity

from otel_resilience import contract as c
from tests.support.telemetry import Telemetry

UNBOUNDED = c.Finding.RETRY_UNBOUNDED.value
ON_REJECTION = c.Finding.RETRY_ON_REJECTION.value


def findings(telemetry: Telemetry) -> dict[tuple[str, str], float]:
    return {
        (finding, name): count
        for (finding, name), count in telemetry.values(c.DIAGNOSTICS.name, c.DIAGNOSTIC, c.RETRY_NAME).items()
    }


def warnings_about(caplog: pytest.LogCaptureFixture, finding: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if f"otel-resilience: {finding} " in r.getMessage()]


def test_a_policy_without_stop_is_counted_per_operation_and_logged_once(
    retry_telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    @tenacity.retry(wait=tenacity.wait_none())
    def forever() -> str:
        return "ok"

    @tenacity.retry(stop=tenacity.stop_after_attempt(3))
    def bounded() -> str:
        return "ok"

    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        for _ in range(4):
            assert forever() == bounded() == "ok"
    name = f"{__name__}.{forever.__qualname__}"
    assert findings(retry_telemetry) == {(UNBOUNDED, name): 4}, "the bounded policy is not a finding"
    (warning,) = warnings_about(caplog, UNBOUNDED)
    assert f"({name}, stop=stop_never)" in warning
    assert "stop_after_attempt" in warning, "the warning says what to do instead"


def test_retrying_a_breaker_error_is_counted_per_retried_attempt(
    breaker_telemetry: Telemetry, retry_telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=60, name="payments")

    @tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none())
    @breaker
    def pay() -> None:
        raise ConnectionError("down")

    @tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_none(),
        retry=tenacity.retry_if_not_exception_type(pybreaker.CircuitBreakerError),
    )
    @breaker
    def pay_without_retrying_the_breaker() -> None:
        raise ConnectionError("down")

    with caplog.at_level(logging.WARNING, logger="otel_resilience"), pytest.raises(tenacity.RetryError):
        pay()  # trips (CircuitBreakerError), retried; rejected, retried; rejected, stop
    with pytest.raises(pybreaker.CircuitBreakerError):
        pay_without_retrying_the_breaker()  # rejected at once, not retried
    name = f"{__name__}.{pay.__qualname__}"
    assert findings(retry_telemetry) == {(ON_REJECTION, name): 2}, "the last attempt is not retried"
    (warning,) = warnings_about(caplog, ON_REJECTION)
    assert f"({name}, pybreaker.CircuitBreakerError)" in warning
