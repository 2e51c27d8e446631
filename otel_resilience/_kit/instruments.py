"""OpenTelemetry instruments from the contract's specifications, and observable ones that stay current."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from opentelemetry.metrics import Observation

# The API exports no name for its proxy meter: the meter get_meter() hands out before an SDK is set.
from opentelemetry.metrics._internal import _ProxyMeter

from otel_resilience._kit.deferred import run_deferred
from otel_resilience._kit.faults import contain
from otel_resilience.contract import InstrumentKind, MetricSpec

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Meter

    from otel_resilience._kit.recording import Recorder

ObservableCallback = Callable[["CallbackOptions"], Iterable["Observation"]]
RecorderT = TypeVar("RecorderT", bound="Recorder[Any]")

_active: dict[str, Recorder[Any]] = {}
"""The recorder of each instrumentation scope while it is instrumented."""
_active_lock = threading.Lock()


def create_instrument(meter: Meter, spec: MetricSpec, callbacks: Iterable[ObservableCallback] = ()) -> Any:
    """The instrument ``spec`` describes, with its name, unit, description and buckets.

    A counter is an :class:`ExactCounter`: counted in this process, reported at collection.
    """
    if spec.kind is InstrumentKind.COUNTER:
        return exact_counter(meter, spec)
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


class ExactCounter:
    """A monotonic counter kept in this process and reported through an observable counter.

    The SDK's ``Counter.add`` validates, hashes and aggregates its attributes under a lock on every
    call: for a breaker's success in metrics-only mode that was a third of what the instrumentation
    cost. A plain sum needs none of it per call. Counting here is an addition under a lock (exact
    under threads); the SDK reads the totals when it collects, which exports the same cumulative
    sums, so every total stays exact. A counter kept here carries no exemplars: the duration
    histograms recorded with it do.
    """

    __slots__ = ("_counts", "_lock")

    def __init__(self) -> None:
        # Keyed by the attributes' items in their order: cheaper than a frozenset per call. Sets
        # that differ only in order are merged when observed.
        self._counts: dict[tuple[tuple[str, Any], ...], float] = {}
        self._lock = threading.Lock()

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None, context: object = None) -> None:
        """Count ``amount`` for ``attributes``; ``context`` is accepted as ``Counter.add`` takes it."""
        key = tuple(attributes.items()) if attributes else ()
        with self._lock:
            counts = self._counts
            counts[key] = counts.get(key, 0) + amount

    def totals(self) -> dict[frozenset[tuple[str, Any]], float]:
        """The totals so far, by attribute set."""
        with self._lock:
            counted = list(self._counts.items())
        totals: dict[frozenset[tuple[str, Any]], float] = {}
        for key, value in counted:
            attributes = frozenset(key)
            totals[attributes] = totals.get(attributes, 0) + value
        return totals


_exact_counters: weakref.WeakKeyDictionary[Meter, dict[str, ExactCounter]] = weakref.WeakKeyDictionary()
"""The counters of each meter, by metric name: one per meter and name, as the SDK's instruments are."""
_exact_counters_lock = threading.Lock()


def exact_counter(meter: Meter, spec: MetricSpec) -> ExactCounter:
    """The exact counter of ``spec`` on ``meter``, created with its observable counter once per meter.

    An SDK meter provider hands out one meter per scope and keeps one instrument per name: the
    totals continue across uninstrument/instrument cycles, as those of the SDK's own counter would,
    and a meter provider the instrumentation no longer records to keeps reporting what it counted.
    """
    with _exact_counters_lock:
        counters = _exact_counters.setdefault(meter, {})
        counter = counters.get(spec.name)
        if counter is not None:
            return counter
        counter = counters[spec.name] = ExactCounter()
    name = spec.name

    def callback(options: CallbackOptions) -> Iterable[Observation]:
        return _observe_counters(meter, name) or ()

    meter.create_observable_counter(name, callbacks=[callback], unit=spec.unit, description=spec.description)
    return counter


def _reporting_meter(meter: Meter) -> Meter:
    """The meter ``meter``'s counts are reported through: a proxy meter's SDK meter, once it has one."""
    if isinstance(meter, _ProxyMeter) and meter._real_meter is not None:
        return meter._real_meter
    return meter


@contain("counter observation")
def _observe_counters(meter: Meter, name: str) -> list[Observation]:
    """The totals of the counters named ``name`` that report through ``meter``'s SDK meter.

    Before an SDK is set, the API hands out a new proxy meter on every ``get_meter``; once one is
    set, each proxy creates its instruments on the SDK's meter of its scope, which keeps the first
    observable counter of a name and ignores the callbacks of later ones (another proxy's, or those
    created on the SDK meter itself). The one callback kept reports the counts of all of them, so
    that no count is lost whatever the order of ``instrument()`` calls and the SDK's setup.
    """
    run_deferred()  # collection is a safe place for work queued by the garbage collector
    target = _reporting_meter(meter)
    with _exact_counters_lock:
        counters = [
            per_name[name]
            for owner, per_name in _exact_counters.items()
            if name in per_name and _reporting_meter(owner) is target
        ]
    totals: dict[frozenset[tuple[str, Any]], float] = {}
    for counter in counters:
        for attributes, value in counter.totals().items():
            totals[attributes] = totals.get(attributes, 0) + value
    return [Observation(value, dict(attributes)) for attributes, value in totals.items()]


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
