"""OpenTelemetry instruments from the contract's specifications, and observable ones that stay current."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from otel_resilience._kit.deferred import run_deferred
from otel_resilience._kit.faults import contain
from otel_resilience.contract import InstrumentKind, MetricSpec

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Meter, Observation

    from otel_resilience._kit.recording import Recorder

ObservableCallback = Callable[["CallbackOptions"], Iterable["Observation"]]
RecorderT = TypeVar("RecorderT", bound="Recorder[Any]")

_active: dict[str, Recorder[Any]] = {}
"""The recorder of each instrumentation scope while it is instrumented."""
_active_lock = threading.Lock()


def create_instrument(meter: Meter, spec: MetricSpec, callbacks: Iterable[ObservableCallback] = ()) -> Any:
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


def activate(recorder: Recorder[Any]) -> None:
    """``recorder`` is now its scope's: observable instruments read it."""
    with _active_lock:
        _active[recorder.scope] = recorder


def active_recorder(scope: str) -> Recorder[Any] | None:
    """The recorder of ``scope`` while it is instrumented."""
    return _active.get(scope)


def deactivate(recorder: Recorder[Any]) -> None:
    with _active_lock:
        if _active.get(recorder.scope) is recorder:
            del _active[recorder.scope]


def create_observable(
    recorder: RecorderT, spec: MetricSpec, observe: Callable[[RecorderT], Iterable[Observation]]
) -> None:
    """An observable instrument whose callback runs ``observe`` on its scope's active recorder.

    A meter keeps the callbacks of its observable instruments for its lifetime, and returns the
    existing instrument when one of the same name is created again. The callback therefore reads
    whichever recorder is active, if it records to the callback's meter (an SDK meter provider
    hands out one meter per scope): instrument/uninstrument cycles neither leak, nor go stale,
    nor report to a meter provider that is no longer the instrumentation's.
    """
    scope = recorder.scope
    meter = recorder.meter
    guarded_observe = contain(f"{spec.name} observation")(observe)

    def callback(options: CallbackOptions) -> Iterable[Observation]:
        run_deferred()  # collection is a safe place for work queued by the garbage collector
        active: Any = _active.get(scope)
        if active is None or active.meter is not meter:
            return ()
        return guarded_observe(active) or ()

    create_instrument(meter, spec, [callback])
