"""``examples/aiobreaker_app.py`` under ``opentelemetry-instrument`` with the console exporters."""

from __future__ import annotations

from otel_resilience import contract as c
from tests.support import example_checks as checks
from tests.support.console_output import run_instrumented

DOWN = "__main__.ServiceDown"
REJECTED = "aiobreaker.state.CircuitBreakerError"


def test_aiobreaker_app_under_opentelemetry_instrument() -> None:
    run = run_instrumented("examples/aiobreaker_app.py")
    assert run.stdout_lines == ["breaker: OPEN", "apple: 12", "breaker: CLOSED"]

    calls = checks.spans_named(run, "inventory")
    assert [
        (s["attributes"][c.BREAKER_STATE], s["attributes"][c.OUTCOME], s["attributes"].get(c.ERROR_TYPE))
        for s in calls
    ] == [
        ("closed", "failure", DOWN),
        ("closed", "failure", DOWN),
        ("open", "rejected", REJECTED),
        ("half_open", "success", None),
    ]
    assert checks.state_changes(run.spans) == checks.TRIPPED_AND_RECOVERED
    assert run.metric_values(c.BREAKER_CALLS.name, c.BREAKER_STATE, c.OUTCOME, c.ERROR_TYPE) == {
        ("closed", "failure", DOWN): 2,
        ("open", "rejected", REJECTED): 1,
        ("half_open", "success", None): 1,
    }
    checks.assert_breaker_closed(run, "inventory")
