"""``examples/aiobreaker_app.py`` under ``opentelemetry-instrument`` with the console exporters."""

from __future__ import annotations

from otel_resilience import contract as c
from tests.support.console_output import run_instrumented

DOWN = "__main__.ServiceDown"
REJECTED = "aiobreaker.state.CircuitBreakerError"


def test_aiobreaker_app_under_opentelemetry_instrument() -> None:
    run = run_instrumented("examples/aiobreaker_app.py")
    assert run.stdout_lines == ["breaker: OPEN", "apple: 12", "breaker: CLOSED"]

    calls = [s for s in run.spans if s["name"] == "inventory"]
    assert [
        (s["attributes"][c.BREAKER_STATE], s["attributes"][c.OUTCOME], s["attributes"].get(c.ERROR_TYPE))
        for s in calls
    ] == [
        ("closed", "failure", DOWN),
        ("closed", "failure", DOWN),
        ("open", "rejected", REJECTED),
        ("half_open", "success", None),
    ]
    changes = [
        (e["attributes"][c.BREAKER_PREVIOUS_STATE], e["attributes"][c.BREAKER_STATE])
        for s in run.spans
        for e in s["events"]
        if e["name"] == c.STATE_CHANGE_EVENT
    ]
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert run.metric_values(c.BREAKER_CALLS.name, c.BREAKER_STATE, c.OUTCOME, c.ERROR_TYPE) == {
        ("closed", "failure", DOWN): 2,
        ("open", "rejected", REJECTED): 1,
        ("half_open", "success", None): 1,
    }
    assert run.metric_values(c.BREAKER_STATUS.name, c.BREAKER_NAME, c.BREAKER_STATE) == {
        ("inventory", "closed"): 1
    }
