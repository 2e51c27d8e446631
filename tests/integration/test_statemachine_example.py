"""``examples/statemachine_app.py`` under ``opentelemetry-instrument`` with the console exporters."""

from __future__ import annotations

from otel_resilience import contract as c
from tests.support import example_checks as checks
from tests.support.console_output import run_instrumented

NAME = "__main__.TrafficLight"
NOT_ALLOWED = "statemachine.exceptions.TransitionNotAllowed"


def test_statemachine_app_under_opentelemetry_instrument() -> None:
    run = run_instrumented("examples/statemachine_app.py")
    assert run.stdout_lines[-2] == "state: green"
    truth = checks.printed_outcomes(run.stdout_lines[-1])
    assert truth == {"blocked": 1, "failed": 1, "refused": 1, "transitioned": 3}

    spans = checks.machine_spans(run, NAME)
    assert [s["name"].removeprefix(f"{NAME} ") for s in spans] == ["go", "slow", "stop", "stop", "go", "go"]
    assert [s["attributes"][c.STATEMACHINE_OUTCOME] for s in spans] == [
        "refused",
        "transitioned",
        "failed",
        "transitioned",
        "blocked",
        "transitioned",
    ]
    assert [s["status"]["status_code"] for s in spans] == [
        "ERROR",
        "UNSET",
        "ERROR",
        "UNSET",
        "UNSET",
        "UNSET",
    ]
    assert spans[2]["attributes"][c.STATEMACHINE_STATE] == "yellow"  # rolled back

    checks.assert_triggers_counted_by_outcome(run, truth)
    assert run.metric_values(
        c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_TRIGGER, c.STATEMACHINE_OUTCOME, c.ERROR_TYPE
    ) == {
        ("go", "refused", NOT_ALLOWED): 1,
        ("go", "blocked", NOT_ALLOWED): 1,
        ("go", "transitioned", None): 1,
        ("slow", "transitioned", None): 1,
        ("stop", "failed", "__main__.BulbBroken"): 1,
        ("stop", "transitioned", None): 1,
    }
    assert run.metric_values(
        c.STATEMACHINE_TRANSITIONS.name, c.STATEMACHINE_PREVIOUS_STATE, c.STATEMACHINE_STATE
    ) == {
        ("green", "yellow"): 1,
        ("yellow", "red"): 1,
        ("red", "green"): 1,
    }
    assert checks.instances(run, NAME) == {"green": 1, "yellow": 0, "red": 0}
