"""``examples/backoff_app.py`` under ``opentelemetry-instrument`` with the console exporters."""

from __future__ import annotations

from otel_resilience import contract as c
from tests.support import example_checks as checks
from tests.support.console_output import run_instrumented

FETCH = "__main__.fetch_stock"
POLL = "__main__.poll_job"
DOWN = "__main__.StockServiceDown"


def test_backoff_app_under_opentelemetry_instrument() -> None:
    run = run_instrumented("examples/backoff_app.py")
    assert run.stdout_lines == ["apple: 12 in stock", "job done: False"]

    checks.assert_recovered_at_the_third_attempt(run, FETCH, DOWN)

    (poll,) = checks.spans_named(run, POLL)
    assert poll["attributes"][c.OUTCOME] == "failed_with_retry"
    assert poll["attributes"][c.ERROR_TYPE] == c.REJECTED_RESULT
    assert poll["status"]["status_code"] == "ERROR"

    assert run.metric_values(c.RETRY_CALLS.name, c.RETRY_NAME, c.OUTCOME, c.ERROR_TYPE) == {
        (FETCH, "success_with_retry", None): 1,
        (POLL, "failed_with_retry", c.REJECTED_RESULT): 1,
    }
    assert run.metric_values(c.RETRY_ATTEMPTS_METRIC.name, c.RETRY_NAME, c.OUTCOME, c.ERROR_TYPE) == {
        (FETCH, "failure", DOWN): 2,
        (FETCH, "success", None): 1,
        (POLL, "failure", c.REJECTED_RESULT): 3,
    }
    assert run.metric_values(c.RETRY_BACKOFF_DURATION.name, c.RETRY_NAME) == {(FETCH,): 2, (POLL,): 2}
