"""Telemetry that survives a fault or a race in our own path: nothing counted may be lost."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import pybreaker
import pytest
import tenacity
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from otel_resilience import contract as c
from otel_resilience._kit.deferred import run_deferred
from otel_resilience.pybreaker import PyBreakerInstrumentor
from otel_resilience.tenacity import TenacityInstrumentor
from tests.support.telemetry import Telemetry

pytestmark = pytest.mark.faults  # every test here injects faults into our telemetry


class RaisingOnStart(SpanProcessor):
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        raise RuntimeError("on_start")


class RaisingOnEnd(SpanProcessor):
    def on_end(self, span: Any) -> None:
        raise RuntimeError("on_end")


def instrumented(telemetry: Telemetry, tracer_provider: TracerProvider) -> list[Any]:
    instrumentors = [PyBreakerInstrumentor(), TenacityInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=telemetry.meter_provider)
    return instrumentors


def test_calls_are_counted_when_no_span_can_start(telemetry: Telemetry) -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(RaisingOnStart())
    instrumentors = instrumented(telemetry, tracer_provider)
    try:
        pybreaker.CircuitBreaker(name="no-span").call(int)
        tenacity.Retrying(name="no-span-op")(int)
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
    assert telemetry.values(c.BREAKER_CALLS.name, c.BREAKER_NAME)[("no-span",)] == 1
    assert telemetry.values(c.RETRY_CALLS.name, c.RETRY_NAME)[("no-span-op",)] == 1


def test_loops_left_early_are_counted_when_spans_cannot_end(telemetry: Telemetry) -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(RaisingOnEnd())
    instrumentors = instrumented(telemetry, tracer_provider)

    def left_with_return() -> str:
        for attempt in tenacity.Retrying(name="left-early"):
            with attempt:
                return "ok"
        raise AssertionError("unreachable")

    try:
        for _ in range(3):
            assert left_with_return() == "ok"
        gc.collect()
        run_deferred()
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
    calls = telemetry.values(c.RETRY_CALLS.name, c.RETRY_NAME, c.OUTCOME)
    assert calls == {("left-early", "success_without_retry"): 3}
    assert telemetry.values(c.RETRY_ATTEMPTS_METRIC.name, c.RETRY_NAME)[("left-early",)] == 3


def test_reinstrumenting_moves_the_breaker_gauges_too(telemetry: Telemetry) -> None:
    old = Telemetry(*_fresh())
    instrumentor = PyBreakerInstrumentor()
    instrumentor.instrument(tracer_provider=old.tracer_provider, meter_provider=old.meter_provider)
    instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    try:
        moved = pybreaker.CircuitBreaker(name="moved")
        states = telemetry.values(c.BREAKER_STATUS.name, c.BREAKER_NAME, c.BREAKER_STATE)
        assert states[("moved", "closed")] == 1
        assert old.points(c.BREAKER_STATUS.name) == []
        assert old.points(c.BREAKER_CONSECUTIVE_FAILURES.name) == []
        del moved
    finally:
        instrumentor.uninstrument()


def test_breakers_created_during_collection_never_blank_the_gauges(breaker_telemetry: Telemetry) -> None:
    long_lived = [pybreaker.CircuitBreaker(name=f"long-lived-{i}") for i in range(20)]
    stop = threading.Event()

    def create_breakers() -> None:
        while not stop.is_set():
            pybreaker.CircuitBreaker(name="short-lived")

    creator = threading.Thread(target=create_breakers)
    creator.start()
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            names = {p.attributes[c.BREAKER_NAME] for p in breaker_telemetry.points(c.BREAKER_STATUS.name)}
            assert {b.name for b in long_lived} <= names
    finally:
        stop.set()
        creator.join()


def _fresh() -> tuple[Any, ...]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    reader = InMemoryMetricReader()
    return TracerProvider(), MeterProvider(metric_readers=[reader]), InMemorySpanExporter(), reader
