"""``examples/purgatory_app.py`` under ``opentelemetry-instrument`` with the console exporters."""

from __future__ import annotations

from otel_resilience import contract as c
from tests.support import example_checks as checks
from tests.support.console_output import run_instrumented

REJECTED = "purgatory.domain.model.OpenedState"


def test_purgatory_app_under_opentelemetry_instrument() -> None:
    run = run_instrumented("examples/purgatory_app.py")
    assert run.stdout_lines == [
        "failed: timeout",
        "failed: timeout",
        "rejected: breaker open",
        "apple: 3 left",
    ]

    calls = checks.spans_named(run, "inventory")
    assert [(s["attributes"][c.BREAKER_STATE], s["attributes"][c.OUTCOME]) for s in calls] == [
        ("closed", "failure"),
        ("closed", "failure"),
        ("open", "rejected"),
        ("half_open", "success"),
    ]
    assert calls[2]["attributes"][c.ERROR_TYPE] == REJECTED
    assert checks.state_changes(calls) == checks.TRIPPED_AND_RECOVERED

    assert run.metric_values(c.BREAKER_CALLS.name, c.BREAKER_STATE, c.OUTCOME, c.ERROR_TYPE) == {
        ("closed", "failure", "__main__.InventoryDown"): 2,
        ("open", "rejected", REJECTED): 1,
        ("half_open", "success", None): 1,
    }
    checks.assert_breaker_transitions_and_closed(run, "inventory")
