"""Running one example twice: uninstrumented, then instrumented with fresh in-memory SDK providers."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.telemetry import Telemetry

T = TypeVar("T")


def run_twins(instrumentor_type: type, run: Callable[[], T]) -> tuple[T, T, Telemetry]:
    """``run()`` uninstrumented, then instrumented: both results, and what the second run exported."""
    bare = run()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrumentor: Any = instrumentor_type()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        instrumented = run()
    finally:
        instrumentor.uninstrument()
    return bare, instrumented, Telemetry(tracer_provider, meter_provider, exporter, reader)
