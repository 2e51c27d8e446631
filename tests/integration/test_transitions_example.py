"""``examples/transitions_app.py`` under ``opentelemetry-instrument`` with the console exporters."""

from __future__ import annotations

from otel_resilience import contract as c
from tests.support import example_checks as checks
from tests.support.console_output import run_instrumented

JAM = "__main__.LabelPrinterJam"
MACHINE_ERROR = "transitions.core.MachineError"


def test_transitions_app_under_opentelemetry_instrument() -> None:
    run = run_instrumented("examples/transitions_app.py")
    assert run.stdout_lines[0] == "states: delivered new delivered"
    truth = checks.printed_outcomes(run.stdout_lines[1])
    assert truth == {"blocked": 1, "failed": 1, "refused": 5, "transitioned": 5}

    spans = checks.machine_spans(run, "orders")
    assert len(spans) == sum(truth.values())
    assert all(s["kind"] == "SpanKind.INTERNAL" and s["parent_id"] is None for s in spans)
    by_outcome: dict[str, int] = {}
    for span in spans:
        outcome = span["attributes"][c.STATEMACHINE_OUTCOME]
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
        assert span["name"] == f"orders {span['attributes'][c.STATEMACHINE_TRIGGER]}"
        expected_status = "ERROR" if outcome in ("refused", "failed") else "UNSET"
        assert span["status"]["status_code"] == expected_status
    assert by_outcome == truth
    (failed,) = [s for s in spans if s["attributes"][c.STATEMACHINE_OUTCOME] == "failed"]
    assert failed["attributes"] == {
        c.STATEMACHINE_NAME: "orders",
        c.STATEMACHINE_TRIGGER: "ship",
        c.STATEMACHINE_PREVIOUS_STATE: "paid",
        c.STATEMACHINE_STATE: "shipped",
        c.STATEMACHINE_OUTCOME: "failed",
        c.ERROR_TYPE: JAM,
    }

    checks.assert_triggers_counted_by_outcome(run, truth)
    assert run.metric_values(
        c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_TRIGGER, c.STATEMACHINE_OUTCOME, c.ERROR_TYPE
    ) == {
        ("ship", "refused", MACHINE_ERROR): 4,
        ("deliver", "refused", MACHINE_ERROR): 1,
        ("pay", "transitioned", None): 2,
        ("pay", "blocked", None): 1,
        ("ship", "transitioned", None): 1,
        ("ship", "failed", JAM): 1,
        ("deliver", "transitioned", None): 2,
    }
    assert run.metric_values(
        c.STATEMACHINE_TRANSITIONS.name, c.STATEMACHINE_PREVIOUS_STATE, c.STATEMACHINE_STATE
    ) == {("new", "paid"): 2, ("paid", "shipped"): 2, ("shipped", "delivered"): 2}
    assert checks.instances(run, "orders") == {"new": 1, "paid": 0, "shipped": 0, "delivered": 2}
