"""``examples/automat_app.py`` under ``opentelemetry-instrument`` with the console exporters."""

from __future__ import annotations

from otel_resilience import contract as c
from tests.support import example_checks as checks
from tests.support.console_output import run_instrumented

NAME = "__main__.Turnstile"
STUCK = "__main__.ArmStuck"
NO_TRANSITION = "automat._core.NoTransition"


def test_automat_app_under_opentelemetry_instrument() -> None:
    run = run_instrumented("examples/automat_app.py")
    truth = checks.printed_outcomes(run.stdout_lines[-1])
    assert truth == {"failed": 1, "refused": 2, "transitioned": 4}

    spans = checks.machine_spans(run, NAME)
    assert [s["name"] for s in spans] == [
        f"{NAME} {i}" for i in ("push", "coin", "push", "coin", "coin", "push", "coin")
    ]
    assert [s["attributes"][c.STATEMACHINE_OUTCOME] for s in spans] == [
        "refused",
        "transitioned",
        "transitioned",
        "transitioned",
        "refused",
        "transitioned",
        "failed",
    ]
    assert [s["status"]["status_code"] for s in spans] == [
        "ERROR",
        "UNSET",
        "UNSET",
        "UNSET",
        "ERROR",
        "UNSET",
        "ERROR",
    ]
    assert spans[-1]["attributes"][c.STATEMACHINE_STATE] == "unlocked"

    checks.assert_triggers_counted_by_outcome(run, truth)
    assert run.metric_values(
        c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_TRIGGER, c.STATEMACHINE_OUTCOME, c.ERROR_TYPE
    ) == {
        ("push", "refused", NO_TRANSITION): 1,
        ("coin", "refused", NO_TRANSITION): 1,
        ("coin", "transitioned", None): 2,
        ("push", "transitioned", None): 2,
        ("coin", "failed", STUCK): 1,
    }
    assert run.metric_values(
        c.STATEMACHINE_TRANSITIONS.name, c.STATEMACHINE_PREVIOUS_STATE, c.STATEMACHINE_STATE
    ) == {
        ("locked", "unlocked"): 3,
        ("unlocked", "locked"): 2,
    }
    assert checks.instances(run, NAME) == {"locked": 0, "unlocked": 1}
