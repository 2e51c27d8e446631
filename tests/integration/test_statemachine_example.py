"""``examples/statemachine_app.py`` under ``opentelemetry-instrument`` with the console exporters."""

from __future__ import annotations

import json

from otel_resilience import contract as c
from tests.support.console_output import run_instrumented

NAME = "__main__.TrafficLight"
NOT_ALLOWED = "statemachine.exceptions.TransitionNotAllowed"


def test_statemachine_app_under_opentelemetry_instrument() -> None:
    run = run_instrumented("examples/statemachine_app.py")
    assert run.stdout_lines[-2] == "state: green"
    truth = json.loads(run.stdout_lines[-1].removeprefix("outcomes: "))
    assert truth == {"blocked": 1, "failed": 1, "refused": 1, "transitioned": 3}

    spans = [s for s in run.spans if s["attributes"].get(c.STATEMACHINE_NAME) == NAME]
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

    assert run.metric_values(c.STATEMACHINE_TRIGGERS.name, c.STATEMACHINE_OUTCOME) == {
        (outcome,): n for outcome, n in truth.items()
    }
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
    assert run.metric_values(c.STATEMACHINE_TRIGGER_DURATION.name, c.STATEMACHINE_OUTCOME) == {
        (outcome,): n for outcome, n in truth.items()
    }
    instances = {
        p["attributes"][c.STATEMACHINE_STATE]: p["value"]
        for p in run.metrics[c.STATEMACHINE_INSTANCES.name]
        if p["attributes"][c.STATEMACHINE_NAME] == NAME
    }
    assert instances == {"green": 1, "yellow": 0, "red": 0}
