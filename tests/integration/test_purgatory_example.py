"""``examples/purgatory_app.py`` under ``opentelemetry-instrument`` with the console exporters."""

from __future__ import annotations

from otel_resilience import contract as c
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

    calls = [s for s in run.spans if s["name"] == "inventory"]
    assert [(s["attributes"][c.BREAKER_STATE], s["attributes"][c.OUTCOME]) for s in calls] == [
        ("closed", "failure"),
        ("closed", "failure"),
        ("open", "rejected"),
        ("half_open", "success"),
    ]
    assert calls[2]["attributes"][c.ERROR_TYPE] == REJECTED
    changes = [
        (e["attributes"][c.BREAKER_PREVIOUS_STATE], e["attributes"][c.BREAKER_STATE])
        for s in calls
        for e in s["events"]
        if e["name"] == c.STATE_CHANGE_EVENT
    ]
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]

    assert run.metric_values(c.BREAKER_CALLS.name, c.BREAKER_STATE, c.OUTCOME, c.ERROR_TYPE) == {
        ("closed", "failure", "__main__.InventoryDown"): 2,
        ("open", "rejected", REJECTED): 1,
        ("half_open", "success", None): 1,
    }
    assert run.metric_values(c.BREAKER_TRANSITIONS.name, c.BREAKER_PREVIOUS_STATE, c.BREAKER_STATE) == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "closed"): 1,
    }
    assert run.metric_values(c.BREAKER_STATUS.name, c.BREAKER_NAME, c.BREAKER_STATE) == {
        ("inventory", "closed"): 1
    }
