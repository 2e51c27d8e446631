"""circuitbreaker: 1,000 instrument/uninstrument cycles restore every original, one wrapper layer each."""

from __future__ import annotations

import gc
import inspect
import time
from typing import Any

import circuitbreaker
from circuitbreaker import CircuitBreaker
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from wrapt import FunctionWrapper

from otel_resilience._kit.patching import WrappedProperty
from otel_resilience.circuitbreaker import CircuitBreakerInstrumentor

PATCH_POINTS = {
    (CircuitBreaker, "__init__"),
    (CircuitBreaker, "__enter__"),
    (CircuitBreaker, "__exit__"),
    (CircuitBreaker, "_CircuitBreaker__call_failed"),
    (CircuitBreaker, "reset"),
    (CircuitBreaker, "state"),
    (CircuitBreaker, "opened"),
}
LIFECYCLE_BREAKER = CircuitBreaker(name="lifecycle")


def class_attributes() -> dict[tuple[type, str], object]:
    classes = [
        cls
        for cls in vars(circuitbreaker).values()
        if inspect.isclass(cls) and cls.__module__ == "circuitbreaker"
    ]
    return {(cls, name): value for cls in classes for name, value in vars(cls).items()}


def changed(originals: dict[tuple[type, str], object]) -> set[tuple[type, str]]:
    now = class_attributes()
    return {key for key in originals.keys() | now.keys() if now.get(key) is not originals.get(key)}


def test_a_thousand_cycles_restore_every_original() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrumentor = CircuitBreakerInstrumentor()
    originals = class_attributes()
    began = time.perf_counter()
    try:
        cycles(instrumentor, originals, exporter, tracer_provider, meter_provider)
    finally:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    gc.collect()
    print(f"\ncircuitbreaker: 1000 cycles in {time.perf_counter() - began:.1f} s, every original restored")


def cycles(
    instrumentor: Any, originals: Any, exporter: Any, tracer_provider: Any, meter_provider: Any
) -> None:
    guarded = LIFECYCLE_BREAKER(int)
    for cycle in range(1, 1001):
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        assert changed(originals) == PATCH_POINTS, cycle
        for owner, name in PATCH_POINTS:
            wrapper: Any = vars(owner)[name]
            assert isinstance(wrapper, (FunctionWrapper, WrappedProperty)), name
            assert wrapper.__wrapped__ is originals[owner, name], f"{name}: one layer"
        guarded()
        assert len(exporter.get_finished_spans()) == 1, cycle
        instrumentor.uninstrument()
        assert changed(originals) == set(), f"cycle {cycle}: every original restored"
        guarded()
        assert len(exporter.get_finished_spans()) == 1, f"cycle {cycle}: nothing after"
        exporter.clear()


def test_without_an_sdk_only_the_call_entry_and_the_constructor_are_wrapped() -> None:
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.trace import NoOpTracerProvider

    originals = class_attributes()
    instrumentor = CircuitBreakerInstrumentor()
    instrumentor.instrument(tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider())
    try:
        assert changed(originals) == {(CircuitBreaker, "__init__"), (CircuitBreaker, "__enter__")}
        assert LIFECYCLE_BREAKER(int)() == 0
    finally:
        instrumentor.uninstrument()
    assert changed(originals) == set()
