"""Run the demo: set up telemetry, simulate, show, flush, and check the telemetry against the truth."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pybreaker
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from otel_resilience._demo import setup
from otel_resilience._demo.dependencies import DependencyOptions
from otel_resilience._demo.simulation import Simulation
from otel_resilience._demo.truth import compare, expected_totals, observed_totals
from otel_resilience._demo.view import View

if TYPE_CHECKING:
    from collections.abc import Iterator


def _options(redis_url: str | None) -> DependencyOptions:
    if redis_url is None:
        return DependencyOptions()
    import redis

    client = redis.Redis.from_url(redis_url)
    client.ping()  # fail now, clearly, rather than fall back to the breaker's default state all run

    def storage(name: str) -> pybreaker.CircuitBreakerStorage | None:
        if name != "inventory":
            return None
        return pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace="otel-resilience-demo")

    return DependencyOptions(storage_factory=storage)


def _points(reader: InMemoryMetricReader) -> Iterator[tuple[str, Any, float]]:
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    value = (
                        point.count if isinstance(point, HistogramDataPoint) else getattr(point, "value", 0)
                    )
                    yield metric.name, point.attributes or {}, value


def _report(reader: InMemoryMetricReader, truth: dict[str, Any]) -> bool:
    rows = compare(expected_totals(truth), observed_totals(_points(reader)))
    mismatches = [row for row in rows if row[1] != row[2]]
    print(f"\ntelemetry vs ground truth: {len(rows) - len(mismatches)} of {len(rows)} totals agree")
    for (metric, attributes), expected, observed in mismatches:
        labels = ", ".join(f"{k}={v}" for k, v in attributes)
        print(f"  MISMATCH {metric} {{{labels}}}: truth {expected:g}, telemetry {observed:g}")
    return not mismatches


def run_demo(
    *, duration: float, seed: int, rate: float, otlp: str | None, redis_url: str | None
) -> dict[str, Any]:
    reader = None
    if setup.already_instrumented():
        telemetry = "configured by opentelemetry-instrument"
    elif otlp or setup.wants_otlp():
        telemetry = setup.setup_otlp(otlp)
    else:
        reader = setup.setup_embedded()
        telemetry = "in-process reader (use --otlp ENDPOINT to export)"

    simulation = Simulation(seed=seed, rate=rate, options=_options(redis_url))
    view = View(simulation, duration, telemetry)
    truth = simulation.run(duration, view.tick).as_json()
    view.tick(1.0)

    for provider in (metrics.get_meter_provider(), trace.get_tracer_provider()):
        flush = getattr(provider, "force_flush", None)
        if flush is not None:
            flush()
    if reader is not None and not _report(reader, truth):
        raise SystemExit(1)
    return truth
