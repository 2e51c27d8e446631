"""pytest plugin: run an instrumented library's own test suite with our instrumentation active.

Loaded with ``-p otel_upstream_plugin`` (this folder on ``PYTHONPATH``). Before any test module is
imported it installs SDK tracer and meter providers and instruments the libraries named in
``OTEL_UPSTREAM_LIBRARIES`` (default: both). At the end it prints how many spans and data points the
suite made, so a run in which the instrumentation silently did nothing shows up as zeros.

Spans are counted as they are exported, and not kept: an exporter sends them away. Keeping every span
of a suite in memory (an in-memory exporter) would make the process's heap, and so each of the
garbage collector's full passes, grow with every test, and the suites' timed tests would measure that.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.sdk.trace import ReadableSpan

INSTRUMENTORS = {
    "pybreaker": ("otel_resilience.pybreaker", "PyBreakerInstrumentor"),
    "tenacity": ("otel_resilience.tenacity", "TenacityInstrumentor"),
    "circuitbreaker": ("otel_resilience.circuitbreaker", "CircuitBreakerInstrumentor"),
    "aiobreaker": ("otel_resilience.aiobreaker", "AioBreakerInstrumentor"),
    "transitions": ("otel_resilience.transitions", "TransitionsInstrumentor"),
    "automat": ("otel_resilience.automat", "AutomatInstrumentor"),
    "statemachine": ("otel_resilience.statemachine", "StateMachineInstrumentor"),
    "backoff": ("otel_resilience.backoff", "BackoffInstrumentor"),
    "purgatory": ("otel_resilience.purgatory", "PurgatoryInstrumentor"),
}


class SpanCount(SpanExporter):
    """Counts the spans exported to it, and keeps none."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


_spans = SpanCount()
_reader = InMemoryMetricReader()


def pytest_configure(config: pytest.Config) -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(_spans))
    meter_provider = MeterProvider(metric_readers=[_reader])
    for library in os.environ.get("OTEL_UPSTREAM_LIBRARIES", "pybreaker,tenacity").split(","):
        module_name, class_name = INSTRUMENTORS[library.strip()]
        instrumentor = getattr(importlib.import_module(module_name), class_name)
        instrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    _warm_up()


def _warm_up() -> None:
    """Make one failing call through each library, so that the one-time costs of a first call (lazy
    imports, the first traceback formatted for a recorded exception) do not land in a timed test
    (tenacity's ``test_sleeps`` allows an operation 1.1 ms)."""
    with contextlib.suppress(Exception):
        import tenacity

        tenacity.Retrying(stop=tenacity.stop_after_attempt(1), reraise=True)(_fail)
    with contextlib.suppress(Exception):
        import pybreaker

        pybreaker.CircuitBreaker(name="warm-up").call(_fail)
    _spans.exported = 0


def _fail() -> None:
    raise RuntimeError("warm-up")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    data = _reader.get_metrics_data()
    points: dict[str, int] = {}
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points[metric.name] = len(metric.data.data_points)
    terminalreporter.write_line(
        f"otel-resilience instrumentation active: {_spans.exported} spans, "
        f"{sum(points.values())} metric data points in {len(points)} metrics"
    )
    for name in sorted(points):
        terminalreporter.write_line(f"  {name}: {points[name]} series")
