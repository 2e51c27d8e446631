"""``examples/tenacity_app.py`` under ``opentelemetry-instrument`` with the console exporters."""

from __future__ import annotations

from otel_resilience import contract as c
from tests.support import example_checks as checks
from tests.support.console_output import run_instrumented

OPERATION = "__main__.fetch_price"
DOWN = "__main__.PriceServiceDown"


def test_tenacity_app_under_opentelemetry_instrument() -> None:
    run = run_instrumented("examples/tenacity_app.py")
    assert run.stdout_lines == ["apple: 4.20", "attempts: 3"]

    operation = checks.assert_recovered_at_the_third_attempt(run, OPERATION, DOWN)
    assert operation["status"]["status_code"] == "UNSET"

    assert run.metric_values(c.RETRY_CALLS.name, c.RETRY_NAME, c.OUTCOME, c.ERROR_TYPE) == {
        (OPERATION, "success_with_retry", None): 1
    }
    assert run.metric_values(c.RETRY_ATTEMPTS_METRIC.name, c.OUTCOME, c.ERROR_TYPE) == {
        ("failure", DOWN): 2,
        ("success", None): 1,
    }
    assert run.metric_values(c.RETRY_ATTEMPT_DURATION.name, c.OUTCOME) == {("failure",): 2, ("success",): 1}
    assert run.metric_values(c.RETRY_CALL_DURATION.name, c.OUTCOME) == {("success_with_retry",): 1}
    (attempts_per_call,) = run.metrics[c.RETRY_CALL_ATTEMPTS.name]
    assert (attempts_per_call["count"], attempts_per_call["sum"]) == (1, 3)
    (backoff,) = run.metrics[c.RETRY_BACKOFF_DURATION.name]
    assert (backoff["count"], backoff["sum"]) == (2, 0.2)
