"""Lifecycle: instrument and uninstrument, again and again, and what each leaves behind.

- 1,000 ``instrument()``/``uninstrument()`` cycles for each instrumentor: while instrumented, exactly
  the patch points of ``_patches.py`` are wrapped, each by one wrapper layer around the original; after
  ``uninstrument()`` every attribute of every class of the library is the very object it was before
  (``is``); a call made while instrumented produces exactly one span (one breaker call span, or one
  operation span with its one attempt span), a call made after produces none; memory is flat.
- Without an SDK, cycles wrap what notices one (every pybreaker patch point; tenacity's ``iter`` only;
  circuitbreaker's call entry and constructor; aiobreaker's state calls and constructor) and restore
  everything.
- Instrumenting twice wraps once (``BaseInstrumentor`` warns and does nothing).
- Instrument, uninstrument, instrument with other providers: telemetry goes to the new ones only.
"""

from __future__ import annotations

import gc
import importlib.metadata
import importlib.util
import inspect
import logging
import os
import pathlib
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import aiobreaker
import aiobreaker.circuitbreaker
import aiobreaker.state
import automat._core
import automat._methodical
import circuitbreaker
import pybreaker
import pytest
import statemachine.engines.async_
import statemachine.engines.sync
import statemachine.event
import statemachine.statemachine
import tenacity
import tenacity.asyncio
import tenacity.tornadoweb
import transitions.core
import transitions.extensions.asyncio
import transitions.extensions.nesting
from automat import MethodicalMachine
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import NoOpTracerProvider
from wrapt import FunctionWrapper

from otel_resilience import contract as c
from otel_resilience._kit.patching import WrappedProperty
from otel_resilience.aiobreaker import AioBreakerInstrumentor
from otel_resilience.automat import AutomatInstrumentor
from otel_resilience.circuitbreaker import CircuitBreakerInstrumentor
from otel_resilience.pybreaker import PyBreakerInstrumentor
from otel_resilience.statemachine import StateMachineInstrumentor
from otel_resilience.tenacity import TenacityInstrumentor
from otel_resilience.transitions import TransitionsInstrumentor
from tests.support.telemetry import Telemetry, in_memory_telemetry
from tests.support.tenacity_patch_points import WRAPPED as TENACITY_PATCH_POINTS

CYCLES = 1000
MEASURED_FROM = 100
# Memory from cycle 100 to cycle 1000. A cycle creates a BreakerTelemetry or RetryTelemetry (instruments,
# attribute and name caches, a weak registry: KiBs), five to seven wrapt wrappers and their closures, a
# span or two: any of that kept would show, first of all, as objects of these packages' types, which
# must be exactly as many at cycle 1000 as at cycle 100.
CENSUS_PACKAGES = (
    *("otel_resilience", "wrapt", "opentelemetry"),
    *("pybreaker", "tenacity", "circuitbreaker", "aiobreaker"),
)
# And in bytes: a cycle's state kept (2 KiB or more) would add 1.8 MiB over 900 cycles. What grows
# anyway is the interpreter's: dicts reallocated as they are rewritten (the classes' dicts, by
# wrapping and unwrapping) and lazily filled caches, measured at 3 KiB on Python 3.11 and 27 KiB on
# Python 3.9 (whose dicts reallocate more), never growing with more cycles. Allowed: 64 KiB.
# Not counted: importlib.metadata's caches of directory listings (or those of its backport
# importlib_metadata, before Python 3.10), filled by BaseInstrumentor's dependency check, which it keys
# by each sys.path directory's modification time: any process creating a file in such a directory (the
# working directory) adds an entry. They are the interpreter's, and bounded (lru_caches).
MAX_GROWTH_BYTES = 64 * 1024

METADATA_PACKAGES = [
    Path(importlib.metadata.__file__).parent,  # a package from Python 3.10, a module in importlib before
    *(
        Path(spec.origin).parent
        for spec in [importlib.util.find_spec("importlib_metadata")]
        if spec and spec.origin
    ),
]  # the backport, which OpenTelemetry uses before Python 3.10
NOT_COUNTED = [
    *(tracemalloc.Filter(False, f"{package}{os.sep}*") for package in METADATA_PACKAGES),
    tracemalloc.Filter(False, pathlib.__file__),  # the directory listings' file reads
    tracemalloc.Filter(False, tracemalloc.__file__),
]

PYBREAKER_PATCH_POINTS = [
    (pybreaker.CircuitBreaker, "__init__"),
    (pybreaker.CircuitBreaker, "call"),
    (pybreaker.CircuitBreaker, "is_system_error"),
    (pybreaker.CircuitBreaker, "_create_new_state"),
    (pybreaker.CircuitBreakerState, "before_call"),
    *([(pybreaker.CircuitBreaker, "call_async")] if pybreaker.HAS_TORNADO_SUPPORT else []),
    (pybreaker.CircuitRedisStorage, "increment_counter"),
    (pybreaker.CircuitRedisStorage, "reset_counter"),
]
PYBREAKER_LATE_PATCH_POINTS = {
    (pybreaker.CircuitBreaker, "is_system_error"),
    (pybreaker.CircuitBreakerState, "before_call"),
}
PYBREAKER_PATCHED_WITHOUT_SDK = [p for p in PYBREAKER_PATCH_POINTS if p not in PYBREAKER_LATE_PATCH_POINTS]
TENACITY_PATCHED_WITHOUT_SDK = [(owner, name) for owner, name in TENACITY_PATCH_POINTS if name == "iter"]


class SpanCounter(SpanProcessor):
    """Counts ended spans and keeps none (an in-memory exporter would grow with every cycle)."""

    def __init__(self) -> None:
        self.ended = 0

    def on_end(self, span: ReadableSpan) -> None:
        self.ended += 1


@dataclass(frozen=True)
class Library:
    name: str
    instrumentor: Callable[[], Any]
    modules: tuple[Any, ...]
    patch_points: list[tuple[type, str]]
    patched_without_sdk: list[tuple[type, str]]
    """What is wrapped while nothing can record (the patches only recorded calls need wait for an SDK)."""
    call: Callable[[], object]
    spans_per_call: int
    """Spans of one call: a breaker call span; an operation span and its attempt span."""
    wrappers: tuple[type, ...] = (FunctionWrapper,)
    """What may wrap a patch point (circuitbreaker's properties are wrapped as properties)."""


BREAKER = pybreaker.CircuitBreaker(name="lifecycle")
AIOBREAKER = aiobreaker.CircuitBreaker(name="lifecycle")
GUARDED = circuitbreaker.CircuitBreaker(name="lifecycle")(int)
"""Decorated once, uninstrumented: the calls of every cycle go through the patched class."""


def circuitbreaker_call() -> None:
    assert GUARDED() == 0


TRANSITIONS_MACHINE = transitions.core.Machine(states=["a"], transitions=[["stay", "a", "a"]], initial="a")


class Turnstile:
    _machine = MethodicalMachine()

    @_machine.state(initial=True)
    def idle(self) -> None:
        "idle"

    @_machine.input()
    def nudge(self) -> None:
        "a nudge"

    idle.upon(nudge, enter=idle, outputs=[])


TURNSTILE = Turnstile()


class Lamp(statemachine.statemachine.StateChart):
    on = statemachine.State(initial=True)
    toggle = on.to.itself()


LAMP = Lamp()
TRANSITIONS_PATCH_POINTS = [
    (transitions.core.Machine, "__init__"),
    (transitions.core.Event, "_trigger"),
    (transitions.extensions.asyncio.AsyncEvent, "_trigger"),
    (transitions.extensions.nesting.HierarchicalMachine, "_trigger_event"),
    (transitions.extensions.asyncio.HierarchicalAsyncMachine, "_trigger_event"),
]
AUTOMAT_PATCH_POINTS = [(automat._core.Transitioner, "__init__"), (automat._core.Transitioner, "transition")]
STATEMACHINE_PATCH_POINTS = [
    (statemachine.statemachine.StateChart, "__init__"),
    (statemachine.engines.sync.SyncEngine, "_take_external_event"),
    (statemachine.engines.async_.AsyncEngine, "_take_external_event"),
    (statemachine.event.Event, "put"),
]

CIRCUITBREAKER_PATCH_POINTS = [
    (circuitbreaker.CircuitBreaker, "__init__"),
    (circuitbreaker.CircuitBreaker, "__enter__"),
    (circuitbreaker.CircuitBreaker, "__exit__"),
    (circuitbreaker.CircuitBreaker, "_CircuitBreaker__call_failed"),
    (circuitbreaker.CircuitBreaker, "reset"),
    (circuitbreaker.CircuitBreaker, "state"),
    (circuitbreaker.CircuitBreaker, "opened"),
]
AIOBREAKER_PATCH_POINTS = [
    (aiobreaker.CircuitBreaker, "__init__"),
    (aiobreaker.CircuitBreaker, "is_system_error"),
    (aiobreaker.CircuitBreaker, "_create_new_state"),
    (aiobreaker.state.CircuitBreakerBaseState, "call"),
    (aiobreaker.state.CircuitBreakerBaseState, "call_async"),
    (aiobreaker.state.CircuitOpenState, "call"),
    (aiobreaker.state.CircuitOpenState, "call_async"),
]
AIOBREAKER_LATE_PATCH_POINTS = {
    (aiobreaker.CircuitBreaker, "is_system_error"),
    (aiobreaker.CircuitBreaker, "_create_new_state"),
}

LIBRARIES = [
    Library(
        "pybreaker",
        PyBreakerInstrumentor,
        (pybreaker,),
        PYBREAKER_PATCH_POINTS,
        PYBREAKER_PATCHED_WITHOUT_SDK,
        lambda: BREAKER.call(int),
        1,
    ),
    Library(
        "tenacity",
        TenacityInstrumentor,
        (tenacity, tenacity.asyncio, tenacity.tornadoweb),
        TENACITY_PATCH_POINTS,
        TENACITY_PATCHED_WITHOUT_SDK,
        lambda: tenacity.Retrying()(int),
        2,
    ),
    Library(
        "circuitbreaker",
        CircuitBreakerInstrumentor,
        (circuitbreaker,),
        CIRCUITBREAKER_PATCH_POINTS,
        # Without an SDK only the call entry and the constructor.
        [(circuitbreaker.CircuitBreaker, "__init__"), (circuitbreaker.CircuitBreaker, "__enter__")],
        circuitbreaker_call,
        1,
        (FunctionWrapper, WrappedProperty),
    ),
    Library(
        "aiobreaker",
        AioBreakerInstrumentor,
        (aiobreaker.circuitbreaker, aiobreaker.state),
        AIOBREAKER_PATCH_POINTS,
        [p for p in AIOBREAKER_PATCH_POINTS if p not in AIOBREAKER_LATE_PATCH_POINTS],
        lambda: AIOBREAKER.call(int),
        1,
    ),
    # The state machines' patches are all needed to count triggers: none waits for an SDK.
    Library(
        "transitions",
        TransitionsInstrumentor,
        (transitions.core, transitions.extensions.nesting, transitions.extensions.asyncio),
        TRANSITIONS_PATCH_POINTS,
        TRANSITIONS_PATCH_POINTS,
        lambda: TRANSITIONS_MACHINE.trigger("stay"),
        1,
    ),
    Library(
        "automat",
        AutomatInstrumentor,
        (automat._core, automat._methodical),
        AUTOMAT_PATCH_POINTS,
        AUTOMAT_PATCH_POINTS,
        TURNSTILE.nudge,
        1,
    ),
    Library(
        "statemachine",
        StateMachineInstrumentor,
        (
            statemachine.statemachine,
            statemachine.engines.sync,
            statemachine.engines.async_,
            statemachine.event,
        ),
        STATEMACHINE_PATCH_POINTS,
        STATEMACHINE_PATCH_POINTS,
        lambda: LAMP.send("toggle"),
        1,
    ),
]


def class_attributes(library: Library) -> dict[tuple[type, str], object]:
    """Every attribute of every class the library defines, by (class, name)."""
    classes = {
        cls
        for module in library.modules
        for cls in vars(module).values()
        if inspect.isclass(cls) and cls.__module__.partition(".")[0] == library.name
    }
    return {(cls, name): value for cls in classes for name, value in vars(cls).items()}


def changed(library: Library, originals: dict[tuple[type, str], object]) -> set[tuple[type, str]]:
    now = class_attributes(library)
    return {key for key in originals.keys() | now.keys() if now.get(key) is not originals.get(key)}


def assert_wrapped_once(
    library: Library,
    originals: dict[tuple[type, str], object],
    patch_points: list[tuple[type, str]] | None = None,
) -> None:
    """Exactly the patch points are wrapped, each by one wrapper around the original."""
    patch_points = library.patch_points if patch_points is None else patch_points
    assert changed(library, originals) == set(patch_points)
    for owner, name in patch_points:
        wrapper = vars(owner)[name]
        assert isinstance(wrapper, library.wrappers), (owner, name)
        assert wrapper.__wrapped__ is originals[owner, name], f"{owner.__name__}.{name}: one layer"


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda library: library.name)
def test_a_thousand_cycles_restore_the_originals_and_keep_nothing(library: Library) -> None:
    spans = SpanCounter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(spans)
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrumentor = library.instrumentor()
    originals = class_attributes(library)
    memory: dict[int, tuple[int, int]] = {}
    objects: dict[int, Counter[str]] = {}
    began = time.perf_counter()
    gc.collect()
    tracemalloc.start()
    try:
        for cycle in range(1, CYCLES + 1):
            instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
            assert_wrapped_once(library, originals)
            before = spans.ended
            library.call()
            assert spans.ended - before == library.spans_per_call, f"cycle {cycle}"

            instrumentor.uninstrument()
            assert changed(library, originals) == set(), f"cycle {cycle}: every original restored"
            library.call()
            assert spans.ended - before == library.spans_per_call, f"cycle {cycle}: nothing after"

            if cycle == MEASURED_FROM:
                objects[cycle] = census()  # before the bytes: this census is in both measurements
            if cycle in (MEASURED_FROM, CYCLES):
                gc.collect()
                traced = tracemalloc.take_snapshot()
                memory[cycle] = (size(traced.filter_traces(NOT_COUNTED)), size(traced))
    finally:
        tracemalloc.stop()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    objects[CYCLES] = census()
    growth, everything = (memory[CYCLES][i] - memory[MEASURED_FROM][i] for i in (0, 1))
    print(
        f"\n{library.name}: {CYCLES} cycles in {time.perf_counter() - began:.1f} s; memory growth from"
        f" cycle {MEASURED_FROM} to cycle {CYCLES}: {growth} bytes ({everything} with importlib.metadata's"
        " caches)"
    )
    assert objects[CYCLES] == objects[MEASURED_FROM], "no object of ours, wrapt's or the SDK's is kept"
    assert growth < MAX_GROWTH_BYTES


# The SDK fills a histogram's exemplar reservoir one bucket at a time, as durations first land in a
# bucket: its ExemplarBucket objects grow up to the bucket count of each series (16), however many
# cycles run, and belong to the meter provider the test keeps, not to any cycle.
FILLED_ONCE_PER_BUCKET = frozenset(
    {"opentelemetry.sdk.metrics._internal.exemplar.exemplar_reservoir.ExemplarBucket"}
)


def census() -> Counter[str]:
    """Live objects of the types of ``CENSUS_PACKAGES``, by type, after a full collection."""
    gc.collect()
    return Counter(
        name
        for o in gc.get_objects()
        if isinstance(module := type(o).__module__, str) and module.partition(".")[0] in CENSUS_PACKAGES
        if (name := f"{module}.{type(o).__qualname__}") not in FILLED_ONCE_PER_BUCKET
    )


def size(snapshot: tracemalloc.Snapshot) -> int:
    return sum(trace.size for trace in snapshot.traces)


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda library: library.name)
def test_instrumenting_twice_wraps_once(
    library: Library, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    instrumentor = library.instrumentor()
    originals = class_attributes(library)
    providers = {"tracer_provider": telemetry.tracer_provider, "meter_provider": telemetry.meter_provider}
    instrumentor.instrument(**providers)
    try:
        with caplog.at_level(logging.WARNING):
            instrumentor.instrument(**providers)
        assert [(r.name, r.getMessage()) for r in caplog.records] == [
            (
                "opentelemetry.instrumentation.instrumentor",
                "Attempting to instrument while already instrumented",
            )
        ]
        assert_wrapped_once(library, originals)
        library.call()
        assert len(telemetry.spans()) == library.spans_per_call
    finally:
        instrumentor.uninstrument()
    assert changed(library, originals) == set()


SYNCHRONOUS = {s.name for s in c.METRICS if s.kind in (c.InstrumentKind.COUNTER, c.InstrumentKind.HISTOGRAM)}


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda library: library.name)
def test_without_an_sdk_cycles_wrap_what_notices_one_and_restore_everything(library: Library) -> None:
    spans = SpanCounter()
    tracer_provider = TracerProvider()  # the app's own: what we are given is no-op
    tracer_provider.add_span_processor(spans)
    instrumentor = library.instrumentor()
    originals = class_attributes(library)
    for _ in range(10):
        instrumentor.instrument(tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider())
        try:
            assert_wrapped_once(library, originals, library.patched_without_sdk)
            with tracer_provider.get_tracer("app").start_as_current_span("request"):
                library.call()
            assert_wrapped_once(library, originals, library.patched_without_sdk)
        finally:
            instrumentor.uninstrument()
        assert changed(library, originals) == set()
    assert spans.ended == 10, "the app's spans only"


def totals(reader: InMemoryMetricReader) -> dict[tuple[str, tuple[tuple[str, Any], ...]], float]:
    """Sums and histogram counts of the synchronous instruments (counters, histograms) by attributes."""
    data = reader.get_metrics_data()
    found = {}
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name not in SYNCHRONOUS:
                    continue
                for point in metric.data.data_points:
                    value = point.count if hasattr(point, "bucket_counts") else point.value
                    found[metric.name, tuple(sorted(point.attributes.items()))] = value
    return found


def breaker_and_retry_calls() -> None:
    breaker = pybreaker.CircuitBreaker(name="moved", fail_max=1)
    breaker.call(int)
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(int, "not a number")  # trips: a failure and a transition
    tenacity.Retrying()(int)


def test_reinstrumenting_with_other_providers_sends_telemetry_to_them_only() -> None:
    instrumentors = [PyBreakerInstrumentor(), TenacityInstrumentor()]
    old, new = (in_memory_telemetry() for _ in range(2))

    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=old.tracer_provider, meter_provider=old.meter_provider)
    breaker_and_retry_calls()
    for instrumentor in instrumentors:
        instrumentor.uninstrument()
    old_spans, old_totals = len(old.spans()), totals(old.reader)

    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=new.tracer_provider, meter_provider=new.meter_provider)
    try:
        breaker_and_retry_calls()
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()

    assert len(old.spans()) == old_spans, "no span to the old tracer provider"
    assert totals(old.reader) == old_totals, "no measurement to the old meter provider"
    assert len(new.spans()) == old_spans, "the same calls make the same spans in the new one"
    assert totals(new.reader) == old_totals, "and the same measurements"
