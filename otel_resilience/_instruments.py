"""Create OpenTelemetry instruments from the contract's specifications."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Callable

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from otel_resilience.contract import InstrumentKind, MetricSpec

ObservableCallback = Callable[[CallbackOptions], Iterable[Observation]]


def create_instrument(meter: Meter, spec: MetricSpec, callbacks: Sequence[ObservableCallback] = ()) -> Any:
    """The instrument ``spec`` describes, with its name, unit, description and buckets."""
    if spec.kind is InstrumentKind.COUNTER:
        return meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
    if spec.kind is InstrumentKind.HISTOGRAM:
        return meter.create_histogram(
            spec.name,
            unit=spec.unit,
            description=spec.description,
            explicit_bucket_boundaries_advisory=list(spec.buckets or ()),
        )
    if spec.kind is InstrumentKind.OBSERVABLE_GAUGE:
        return meter.create_observable_gauge(
            spec.name, callbacks=list(callbacks), unit=spec.unit, description=spec.description
        )
    return meter.create_observable_up_down_counter(
        spec.name, callbacks=list(callbacks), unit=spec.unit, description=spec.description
    )
