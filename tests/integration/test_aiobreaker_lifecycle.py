"""aiobreaker: 1,000 instrument/uninstrument cycles restore every original, one wrapper layer each."""

from __future__ import annotations

import inspect
import time
from typing import Any

import aiobreaker
import aiobreaker.circuitbreaker
import aiobreaker.state
from aiobreaker import CircuitBreaker
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from wrapt import FunctionWrapper

from otel_resilience.aiobreaker import AioBreakerInstrumentor

PATCH_POINTS = {
    (aiobreaker.CircuitBreaker, "__init__"),
    (aiobreaker.CircuitBreaker, "is_system_error"),
    (aiobreaker.CircuitBreaker, "_create_new_state"),
    (aiobreaker.state.CircuitBreakerBaseState, "call"),
    (aiobreaker.state.CircuitBreakerBaseState, "call_async"),
    (aiobreaker.state.CircuitOpenState, "call"),
    (aiobreaker.state.CircuitOpenState, "call_async"),
}
LIFECYCLE_BREAKER = CircuitBreaker(name="lifecycle")


def class_attributes() -> dict[tuple[type, str], object]:
    classes = {
        cls
        for module in (aiobreaker.circuitbreaker, aiobreaker.state)
        for cls in vars(module).values()
        if inspect.isclass(cls) and cls.__module__.startswith("aiobreaker")
    }
    return {(cls, name): value for cls in classes for name, value in vars(cls).items()}


def changed(originals: dict[tuple[type, str], object]) -> set[tuple[type, str]]:
    now = class_attributes()
    return {key for key in originals.keys() | now.keys() if now.get(key) is not originals.get(key)}


def test_a_thousand_cycles_restore_every_original() -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrumentor = AioBreakerInstrumentor()
    originals = class_attributes()
    began = time.perf_counter()
    try:
        for cycle in range(1, 1001):
            instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
            assert changed(originals) == PATCH_POINTS, cycle
            for owner, name in PATCH_POINTS:
                wrapper: Any = vars(owner)[name]
                assert isinstance(wrapper, FunctionWrapper), name
                assert wrapper.__wrapped__ is originals[owner, name], f"{name}: one layer"
            LIFECYCLE_BREAKER.call(int)
            assert len(exporter.get_finished_spans()) == 1, cycle
            instrumentor.uninstrument()
            assert changed(originals) == set(), f"cycle {cycle}: every original restored"
            LIFECYCLE_BREAKER.call(int)
            assert len(exporter.get_finished_spans()) == 1, f"cycle {cycle}: nothing after"
            exporter.clear()
    finally:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    print(f"\naiobreaker: 1000 cycles in {time.perf_counter() - began:.1f} s, every original restored")
