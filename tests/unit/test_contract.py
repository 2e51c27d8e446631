"""The telemetry contract is the single source: docs, Prometheus names and instruments follow it."""

from __future__ import annotations

import pytest

from otel_resilience import contract as c
from tests.support import ROOT

# The Prometheus names promised in the issues, written out by hand on purpose: the translation
# rule in the contract must reproduce them.
PROMETHEUS_NAMES = {
    "resilience.circuit_breaker.status": "resilience_circuit_breaker_status",
    "resilience.circuit_breaker.transitions": "resilience_circuit_breaker_transitions_total",
    "resilience.circuit_breaker.calls": "resilience_circuit_breaker_calls_total",
    "resilience.circuit_breaker.call.duration": "resilience_circuit_breaker_call_duration_seconds",
    "resilience.circuit_breaker.consecutive_failures": "resilience_circuit_breaker_consecutive_failures",
    "resilience.retry.calls": "resilience_retry_calls_total",
    "resilience.retry.attempts": "resilience_retry_attempts_total",
    "resilience.retry.attempt.duration": "resilience_retry_attempt_duration_seconds",
    "resilience.retry.call.duration": "resilience_retry_call_duration_seconds",
    "resilience.retry.call.attempts": "resilience_retry_call_attempts",
    "resilience.retry.backoff.duration": "resilience_retry_backoff_duration_seconds",
    "resilience.diagnostics": "resilience_diagnostics_total",
    "statemachine.triggers": "statemachine_triggers_total",
    "statemachine.transitions": "statemachine_transitions_total",
    "statemachine.trigger.duration": "statemachine_trigger_duration_seconds",
    "statemachine.instances": "statemachine_instances",
}


def test_docs_are_generated_from_the_contract() -> None:
    assert (ROOT / "docs" / "telemetry.md").read_text() == c.render_markdown(), (
        "docs/telemetry.md is stale: python -m otel_resilience.contract > docs/telemetry.md"
    )


def test_diagnostics_docs_are_generated_from_the_contract() -> None:
    assert (ROOT / "docs" / "diagnostics.md").read_text() == c.render_diagnostics(), (
        "docs/diagnostics.md is stale: python -m otel_resilience.contract diagnostics > docs/diagnostics.md"
    )


def test_every_finding_has_a_guide_and_a_runnable_example() -> None:
    assert set(c.FINDING_GUIDES) == set(c.Finding)
    for guide in c.FINDING_GUIDES.values():
        compile(guide.example, "<example>", "exec")


@pytest.mark.parametrize("spec", c.METRICS, ids=lambda s: s.name)
def test_prometheus_names(spec: c.MetricSpec) -> None:
    assert spec.prometheus_name == PROMETHEUS_NAMES[spec.name]


def test_every_metric_is_listed() -> None:
    assert {s.name for s in c.METRICS} == set(PROMETHEUS_NAMES)


@pytest.mark.parametrize("spec", c.METRICS, ids=lambda s: s.name)
def test_semantic_convention_style(spec: c.MetricSpec) -> None:
    assert spec.name == spec.name.lower()
    assert spec.unit == "s" or (spec.unit.startswith("{") and spec.unit.endswith("}"))
    if spec.kind is c.InstrumentKind.HISTOGRAM:
        assert spec.buckets == tuple(sorted(spec.buckets or ()))
    if spec.unit == "s":
        assert spec.buckets is not None
        assert spec.buckets[0] == 0.001
        assert spec.buckets[-1] in (60.0, 600.0)


def test_error_type_format() -> None:
    from otel_resilience._kit.exceptions import error_type

    class Local(Exception):
        pass

    assert error_type(ValueError()) == "ValueError"
    assert error_type(Local()) == f"{__name__}.test_error_type_format.<locals>.Local"
