"""The no-code-change path: ``opentelemetry-instrument`` loads our entry points and exports."""

from __future__ import annotations

from opentelemetry.util._importlib_metadata import entry_points  # group= on Python 3.9 too

from otel_resilience import contract as c
from tests.support.console_output import run_instrumented

EXPECTED_APP_OUTPUT = [
    "reserved apple",
    "pear: InventoryDown: pear",
    "plum: CircuitBreakerError: Failures threshold reached, circuit breaker opened",
    "fig: CircuitBreakerError: Timeout not elapsed yet, circuit breaker still open",
    "reserved kiwi",
    "final state: closed",
]


def test_entry_points_are_declared() -> None:
    ours = {
        e.name: e.value
        for e in entry_points(group="opentelemetry_instrumentor")
        if e.dist is not None and e.dist.name == "otel-resilience"
    }
    assert ours == {
        "pybreaker": "otel_resilience.pybreaker:PyBreakerInstrumentor",
        "tenacity": "otel_resilience.tenacity:TenacityInstrumentor",
        "circuitbreaker": "otel_resilience.circuitbreaker:CircuitBreakerInstrumentor",
        "aiobreaker": "otel_resilience.aiobreaker:AioBreakerInstrumentor",
        "transitions": "otel_resilience.transitions:TransitionsInstrumentor",
        "automat": "otel_resilience.automat:AutomatInstrumentor",
        "statemachine": "otel_resilience.statemachine:StateMachineInstrumentor",
        "backoff": "otel_resilience.backoff:BackoffInstrumentor",
        "purgatory": "otel_resilience.purgatory:PurgatoryInstrumentor",
    }


def test_breaker_app_under_opentelemetry_instrument() -> None:
    run = run_instrumented("examples/breaker_app.py")
    assert run.stdout_lines == EXPECTED_APP_OUTPUT
    breaker_spans = [s for s in run.spans if s["name"] == "inventory"]
    assert [(s["attributes"][c.BREAKER_STATE], s["attributes"][c.OUTCOME]) for s in breaker_spans] == [
        ("closed", "success"),
        ("closed", "failure"),
        ("closed", "failure"),
        ("open", "rejected"),
        ("half_open", "success"),
    ]
    events = [
        (e["attributes"][c.BREAKER_PREVIOUS_STATE], e["attributes"][c.BREAKER_STATE])
        for s in breaker_spans
        for e in s["events"]
        if e["name"] == c.STATE_CHANGE_EVENT
    ]
    assert events == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert run.metric_values(c.BREAKER_CALLS.name, c.BREAKER_STATE, c.OUTCOME, c.ERROR_TYPE) == {
        ("closed", "success", None): 1,
        ("closed", "failure", "__main__.InventoryDown"): 2,
        ("open", "rejected", "pybreaker.CircuitBreakerError"): 1,
        ("half_open", "success", None): 1,
    }
    assert sum(run.metric_values(c.BREAKER_TRANSITIONS.name, c.BREAKER_STATE).values()) == 3
    one_hot = {p["attributes"][c.BREAKER_STATE]: p["value"] for p in run.metrics[c.BREAKER_STATUS.name]}
    assert one_hot == {"closed": 1, "open": 0, "half_open": 0}
    failures = {
        p["attributes"][c.BREAKER_NAME]: p["value"] for p in run.metrics[c.BREAKER_CONSECUTIVE_FAILURES.name]
    }
    assert failures == {"inventory": 0}, "reset by the successful probe"


def test_disabled_instrumentation_changes_nothing_but_telemetry() -> None:
    run = run_instrumented(
        "examples/breaker_app.py", env={"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "pybreaker"}
    )
    assert run.stdout_lines == EXPECTED_APP_OUTPUT
    assert [s for s in run.spans if s["name"] == "inventory"] == []
    assert c.BREAKER_CALLS.name not in run.metrics


def test_metrics_only_by_environment() -> None:
    run = run_instrumented("examples/breaker_app.py", env={"OTEL_PYTHON_RESILIENCE_METRICS_ONLY": "true"})
    assert run.stdout_lines == EXPECTED_APP_OUTPUT
    assert run.spans == []
    assert sum(run.metric_values(c.BREAKER_CALLS.name, c.OUTCOME).values()) == 5
