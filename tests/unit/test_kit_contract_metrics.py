"""``otel_resilience._kit.contract_metrics`` on its own: no instrumented library involved."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import trace

from otel_resilience import contract as c
from otel_resilience._kit.contract_metrics import BreakerMetrics, RetryMetrics, retry_outcome
from tests.support.telemetry import Telemetry


def test_retry_outcome_table() -> None:
    assert retry_outcome(failed=False, attempts=1) == "success_without_retry"
    assert retry_outcome(failed=False, attempts=3) == "success_with_retry"
    assert retry_outcome(failed=True, attempts=1) == "failed_without_retry"
    assert retry_outcome(failed=True, attempts=2) == "failed_with_retry"


def test_retry_metrics_start_success_series_at_zero(telemetry: Telemetry) -> None:
    metrics = RetryMetrics(telemetry.meter_provider.get_meter("unit"))
    metrics.count_from_zero("op")
    metrics.calls.add(1, metrics.attributes.get("op", "failed_with_retry", "KeyError"))
    points = {tuple(sorted(p.attributes.items())): p.value for p in telemetry.points(c.RETRY_CALLS.name)}
    assert points == {
        ((c.OUTCOME, "success_without_retry"), (c.RETRY_NAME, "op")): 0,
        ((c.OUTCOME, "success_with_retry"), (c.RETRY_NAME, "op")): 0,
        ((c.ERROR_TYPE, "KeyError"), (c.OUTCOME, "failed_with_retry"), (c.RETRY_NAME, "op")): 1,
    }
    assert [p.value for p in telemetry.points(c.RETRY_ATTEMPTS_METRIC.name)] == [0]


def test_breaker_metrics_from_zero_and_transitions(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = BreakerMetrics(telemetry.meter_provider.get_meter("unit"), "lib.Rejected")
    metrics.count_from_zero("b")
    tracer = telemetry.tracer_provider.get_tracer("unit")
    with caplog.at_level(logging.INFO, logger="otel_resilience"):
        with tracer.start_as_current_span("call"):
            metrics.transition(tracer, "b", "open", "closed")  # on the current span
        metrics.transition(tracer, "b", "half_open", "open")  # on a span of its own
        metrics.transition(None, "b", "closed", "half_open")  # metrics only: no span
    assert trace.get_current_span() is trace.INVALID_SPAN
    zero_calls = {
        (p.attributes[c.BREAKER_STATE], p.attributes[c.OUTCOME], p.attributes.get(c.ERROR_TYPE))
        for p in telemetry.points(c.BREAKER_CALLS.name)
    }
    assert zero_calls == {
        ("closed", "success", None),
        ("half_open", "success", None),
        ("open", "rejected", "lib.Rejected"),
    }
    assert telemetry.values(c.BREAKER_TRANSITIONS.name, c.BREAKER_PREVIOUS_STATE, c.BREAKER_STATE) == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "closed"): 1,
    }
    spans = {s.name: [e.name for e in s.events] for s in telemetry.spans()}
    assert spans == {"call": [c.STATE_CHANGE_EVENT], "b state change": [c.STATE_CHANGE_EVENT]}
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "circuit breaker 'b' changed state: closed -> open"),
        (logging.INFO, "circuit breaker 'b' changed state: open -> half_open"),
        (logging.INFO, "circuit breaker 'b' changed state: half_open -> closed"),
    ]
