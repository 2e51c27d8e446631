"""Telemetry for the demo, set up the way ``opentelemetry-instrument`` does it."""

from __future__ import annotations

import os

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.util._importlib_metadata import EntryPoint, entry_points

_DISTRIBUTION = "otel-resilience"
_OTLP_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
)


def _our_entry_points() -> list[EntryPoint]:
    return [
        entry_point
        for entry_point in entry_points(group="opentelemetry_instrumentor")
        if entry_point.dist is not None and entry_point.dist.name == _DISTRIBUTION
    ]


def already_instrumented() -> bool:
    """True under ``opentelemetry-instrument``, which loaded our entry points before the demo ran."""
    return any(entry_point.load()().is_instrumented_by_opentelemetry for entry_point in _our_entry_points())


def wants_otlp() -> bool:
    return any(os.environ.get(name) for name in _OTLP_VARIABLES)


def setup_otlp(endpoint: str | None) -> str:
    """Configure the SDK from ``OTEL_*`` variables and load every instrumentor entry point.

    This is the very code ``opentelemetry-instrument`` runs.
    """
    if endpoint:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    os.environ.setdefault("OTEL_SERVICE_NAME", "otel-resilience-demo")
    os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")
    from opentelemetry.instrumentation.auto_instrumentation import initialize

    initialize(swallow_exceptions=False)
    return f"OTLP to {os.environ.get('OTEL_EXPORTER_OTLP_ENDPOINT', 'the SDK default endpoint')}"


def setup_embedded() -> InMemoryMetricReader:
    """The default with nothing configured: SDK providers kept in this process, our entry points."""
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "otel-resilience-demo")})
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader], resource=resource))
    trace.set_tracer_provider(TracerProvider(resource=resource))
    disabled = {n.strip() for n in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")}
    for entry_point in _our_entry_points():
        if entry_point.name not in disabled:
            entry_point.load()().instrument()
    return reader
