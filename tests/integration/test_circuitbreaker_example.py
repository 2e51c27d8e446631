"""``examples/circuitbreaker_app.py`` under ``opentelemetry-instrument`` with the console exporters."""

from __future__ import annotations

from otel_resilience import contract as c
from tests.support import example_checks as checks
from tests.support.console_output import run_instrumented

DOWN = "__main__.ServiceDown"


def test_circuitbreaker_app_under_opentelemetry_instrument() -> None:
    run = run_instrumented("examples/circuitbreaker_app.py")
    assert run.stdout_lines == ["apple: 4.00 (cached)", "apple: 4.20"]

    calls = checks.spans_named(run, "prices")
    assert [
        (
            s["attributes"][c.BREAKER_STATE],
            s["attributes"][c.OUTCOME],
            s["attributes"].get(c.ERROR_TYPE),
            s["attributes"].get(c.BREAKER_FALLBACK),
            s["status"]["status_code"],
        )
        for s in calls
    ] == [
        ("closed", "failure", DOWN, None, "ERROR"),
        ("closed", "failure", DOWN, None, "ERROR"),
        ("open", "rejected", None, True, "UNSET"),
        ("half_open", "success", None, None, "UNSET"),
    ]
    assert all(s["kind"] == "SpanKind.INTERNAL" for s in calls)
    assert sorted(checks.state_changes(run.spans)) == sorted(checks.TRIPPED_AND_RECOVERED)

    assert run.metric_values(
        c.BREAKER_CALLS.name, c.BREAKER_NAME, c.BREAKER_STATE, c.OUTCOME, c.ERROR_TYPE
    ) == {
        ("prices", "closed", "failure", DOWN): 2,
        ("prices", "open", "rejected", None): 1,
        ("prices", "half_open", "success", None): 1,
    }
    checks.assert_breaker_transitions_and_closed(run, "prices")
