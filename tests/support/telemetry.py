"""What the instrumentation exported during one test, and fixture factories that instrument for one test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from otel_resilience import contract as c


@dataclass
class Telemetry:
    """What the instrumentation exported during one test."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for m in scope_metrics.metrics:
                    if m.name == metric:
                        found.extend(m.data.data_points)
        return found

    def values(self, metric: str, *keys: str) -> dict[tuple[Any, ...], float]:
        """Metric values (sums, gauge values or histogram counts) keyed by the given attributes."""
        result: dict[tuple[Any, ...], float] = {}
        for point in self.points(metric):
            key = tuple(point.attributes.get(k) for k in keys)
            value = point.count if hasattr(point, "bucket_counts") else point.value
            result[key] = result.get(key, 0) + value
        return {k: v for k, v in result.items() if v}


def in_memory_telemetry(*, shutdown_on_exit: bool = True) -> Telemetry:
    """Fresh SDK providers: spans to an in-memory exporter, metrics to an in-memory reader."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(shutdown_on_exit=shutdown_on_exit)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=shutdown_on_exit)
    return Telemetry(tracer_provider, meter_provider, exporter, reader)


def instrumented_fixture(instrumentor_type: type) -> Any:
    """A fixture: ``instrumentor_type`` instrumented with the test's providers for one test."""

    @pytest.fixture
    def instrumented(telemetry: Telemetry) -> Iterator[Telemetry]:
        instrumentor = instrumentor_type()
        instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
        yield telemetry
        instrumentor.uninstrument()

    return instrumented


def options_fixture(instrumentor_type: type) -> Any:
    """A fixture ``instrument(**options)`` that instruments with the test's providers and these options."""

    @pytest.fixture
    def instrument(telemetry: Telemetry) -> Iterator[Any]:
        instrumentor = instrumentor_type()

        def with_options(**options: Any) -> Telemetry:
            providers = {
                "tracer_provider": telemetry.tracer_provider,
                "meter_provider": telemetry.meter_provider,
            }
            instrumentor.instrument(**{**providers, **options})
            return telemetry

        yield with_options
        instrumentor.uninstrument()

    return instrument


@contextmanager
def instrumented(instrumentor_type: type) -> Iterator[Telemetry]:
    """Fresh SDK providers and ``instrumentor_type`` instrumented with them, for one block (hypothesis
    examples cannot use function-scoped fixtures)."""
    telemetry = in_memory_telemetry(shutdown_on_exit=False)
    instrumentor = instrumentor_type()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    try:
        yield telemetry
    finally:
        instrumentor.uninstrument()
        telemetry.meter_provider.shutdown()
        telemetry.tracer_provider.shutdown()


def span_hook_infos(instrument: Any) -> list[Any]:
    """Instrument (``instrument``: a fixture of ``options_fixture``) with a span hook that keeps each info
    it is given: the list it fills."""
    infos: list[Any] = []
    instrument(span_hook=lambda span, info: infos.append(info))
    return infos


def assert_one_successful_breaker_call(telemetry: Telemetry, breaker: str) -> None:
    """The only span exported is one successful call of ``breaker`` in the closed state."""
    (span,) = telemetry.spans()
    assert span.name == breaker
    assert span.kind is SpanKind.INTERNAL
    assert dict(span.attributes or {}) == {
        c.BREAKER_NAME: breaker,
        c.BREAKER_STATE: "closed",
        c.OUTCOME: "success",
    }
    assert span.status.status_code is StatusCode.UNSET
