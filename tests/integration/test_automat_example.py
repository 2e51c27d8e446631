"""``examples/automat_app.py`` under ``opentelemetry-instrument`` with the console exporters."""

from __future__ import annotations

import json

from otel_resilience import contract as c
from tests.support.console_output import run_instrumented

NAME = "__main__.Turnstile"
STUCK = "__main__.ArmStuck"
NO_TRANSITION = "automat._core.NoTransition"


def test_automat_app_under_opentelemetry_instrument() -> None:
    run = run_instrumented("examples/automat_app.py")
    truth = json.loads(run.stdout_lines[-1].removeprefix("outcomes: "))
    assert truth == {"failed": 1, "refused": 2, "transitioned": 4}

    spans = [s for s in run.spans if s["attributes"].get(c.STATEMACHINE_NAME) == NAME]
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

    assert run.metric_values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_OUTCOME) == {
        (outcome,): n for outcome, n in truth.items()
    }
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
    assert run.metric_values(c.STATEMACHINE_TRIGGER_DURATION.name, c.STATEMACHINE_OUTCOME) == {
        (outcome,): n for outcome, n in truth.items()
    }
    instances = {
        p["attributes"][c.STATEMACHINE_STATE]: p["value"]
        for p in run.metrics[c.STATEMACHINE_INSTANCES.name]
        if p["attributes"][c.STATEMACHINE_NAME] == NAME
    }
    assert instances == {"locked": 0, "unlocked": 1}
