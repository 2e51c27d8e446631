"""What a user of the pybreaker instrumentation sees: spans, events, metrics, logs, options."""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Iterator

import pybreaker
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode

from otel_resilience import contract as c
from otel_resilience._kit.deferred import run_deferred
from otel_resilience.pybreaker import PyBreakerInstrumentor
from tests.support.telemetry import Telemetry, assert_one_successful_breaker_call

pytestmark = pytest.mark.usefixtures("breaker_telemetry")


class Boom(Exception):
    pass


class Business(Exception):
    pass


def fail() -> None:
    raise Boom("down")


def calls(t: Telemetry) -> dict[tuple[object, ...], float]:
    return t.values(c.BREAKER_CALLS.name, c.BREAKER_STATE, c.OUTCOME, c.ERROR_TYPE)


def test_success_call_is_a_span_and_a_count(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="db")
    assert breaker.call(lambda x: x * 2, 21) == 42
    assert_one_successful_breaker_call(breaker_telemetry, "db")
    assert calls(breaker_telemetry) == {("closed", "success", None): 1}
    durations = breaker_telemetry.points(c.BREAKER_CALL_DURATION.name)
    assert tuple(durations[0].explicit_bounds) == c.DURATION_BUCKETS


def test_trip_reject_probe_and_recover(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="db", fail_max=2, reset_timeout=0.05)
    with pytest.raises(Boom):
        breaker.call(fail)
    with pytest.raises(pybreaker.CircuitBreakerError) as tripped:
        breaker.call(fail)
    assert isinstance(tripped.value.__context__, Boom)
    with pytest.raises(pybreaker.CircuitBreakerError):
        breaker.call(lambda: "never runs")
    time.sleep(0.06)
    assert breaker.call(lambda: "probe") == "probe"

    assert calls(breaker_telemetry) == {
        ("closed", "failure", f"{__name__}.Boom"): 2,
        ("open", "rejected", "pybreaker.CircuitBreakerError"): 1,
        ("half_open", "success", None): 1,
    }
    spans = breaker_telemetry.spans()
    assert len(spans) == 4, "pybreaker's re-entry from open to half-open is still one span per call"
    trip, rejected, probe = spans[1], spans[2], spans[3]
    assert trip.status.status_code is StatusCode.ERROR
    assert [e.name for e in trip.events] == [c.STATE_CHANGE_EVENT, "exception"]
    assert rejected.status.status_code is StatusCode.ERROR
    assert rejected.attributes[c.ERROR_TYPE] == "pybreaker.CircuitBreakerError"
    assert [
        (e.attributes[c.BREAKER_PREVIOUS_STATE], e.attributes[c.BREAKER_STATE]) for e in probe.events
    ] == [
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert breaker_telemetry.values(
        c.BREAKER_TRANSITIONS.name, c.BREAKER_PREVIOUS_STATE, c.BREAKER_STATE
    ) == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "closed"): 1,
    }


def test_excluded_exception_is_ignored_not_failed(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="db", exclude=[Business, lambda e: "skip" in str(e)])
    with pytest.raises(Business):
        breaker.call(lambda: (_ for _ in ()).throw(Business()))
    with pytest.raises(Boom):
        breaker.call(lambda: (_ for _ in ()).throw(Boom("skip me")))
    assert breaker.fail_counter == 0
    assert calls(breaker_telemetry) == {
        ("closed", "ignored", f"{__name__}.Business"): 1,
        ("closed", "ignored", f"{__name__}.Boom"): 1,
    }
    assert all(s.status.status_code is StatusCode.UNSET for s in breaker_telemetry.spans())


def test_no_new_error_on_trip_reraises_the_original(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="db", fail_max=1, throw_new_error_on_trip=False)
    with pytest.raises(Boom):
        breaker.call(fail)
    assert calls(breaker_telemetry) == {("closed", "failure", f"{__name__}.Boom"): 1}


def test_breaker_created_before_instrument(telemetry: Telemetry) -> None:
    instrumentor = PyBreakerInstrumentor()
    instrumentor.uninstrument()
    early = pybreaker.CircuitBreaker(name="early")
    decorated = early(lambda: "ok")
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    assert decorated() == "ok"
    assert calls(telemetry) == {("closed", "success", None): 1}
    assert telemetry.values(c.BREAKER_STATUS.name, c.BREAKER_NAME, c.BREAKER_STATE)[("early", "closed")] == 1


def test_decorator_and_app_spans_are_children(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="api")
    tracer = breaker_telemetry.tracer_provider.get_tracer("app")

    @breaker
    def fetch() -> str:
        with tracer.start_as_current_span("http GET"):
            return "body"

    assert fetch() == "body"
    child, parent = breaker_telemetry.spans()
    assert parent.name == "api"
    assert child.parent is not None
    assert child.parent.span_id == parent.context.span_id


def test_calling_block_is_measured_to_its_end(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="db")
    with breaker.calling():
        time.sleep(0.05)
    with pytest.raises(Boom), breaker.calling():
        raise Boom
    (point,) = [
        p
        for p in breaker_telemetry.points(c.BREAKER_CALL_DURATION.name)
        if p.attributes[c.OUTCOME] == "success"
    ]
    assert point.sum >= 0.05
    assert calls(breaker_telemetry) == {
        ("closed", "success", None): 1,
        ("closed", "failure", f"{__name__}.Boom"): 1,
    }
    assert breaker.fail_counter == 1


def test_guarded_generator_is_measured_to_its_end(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="stream")

    @breaker
    def rows() -> Iterator[int]:
        for i in range(3):
            time.sleep(0.02)
            yield i

    generator = rows()
    assert calls(breaker_telemetry) == {}, "nothing ended yet: the body has not run"
    assert list(generator) == [0, 1, 2]
    (point,) = breaker_telemetry.points(c.BREAKER_CALL_DURATION.name)
    assert point.sum >= 0.06
    assert calls(breaker_telemetry) == {("closed", "success", None): 1}


def test_abandoned_generator_is_recorded_later(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="stream")

    @breaker
    def rows() -> Iterator[int]:
        yield from range(10)

    generator = rows()
    next(generator)
    del generator  # closed by its finaliser: recording is deferred to the next instrumented call
    breaker.call(lambda: None)
    assert calls(breaker_telemetry) == {
        ("closed", "failure", "GeneratorExit"): 1,
        ("closed", "success", None): 1,
    }


def test_manual_transitions_get_spans_of_their_own(
    breaker_telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = pybreaker.CircuitBreaker(name="db")
    with caplog.at_level(logging.INFO, logger="otel_resilience"):
        breaker.open()
        breaker.open()
        breaker.close()
    spans = breaker_telemetry.spans()
    assert [s.name for s in spans] == ["db state change"] * 3
    assert [
        (s.events[0].attributes[c.BREAKER_PREVIOUS_STATE], s.events[0].attributes[c.BREAKER_STATE])
        for s in spans
    ] == [
        ("closed", "open"),
        ("open", "open"),
        ("open", "closed"),
    ]
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "circuit breaker 'db' changed state: closed -> open"),
        (logging.WARNING, "circuit breaker 'db' changed state: open -> open"),
        (logging.INFO, "circuit breaker 'db' changed state: open -> closed"),
    ]


def test_transition_is_an_event_on_the_active_span(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="db")
    tracer = breaker_telemetry.tracer_provider.get_tracer("health")
    with tracer.start_as_current_span("health check"):
        breaker.open()
    (span,) = breaker_telemetry.spans()
    assert span.name == "health check"
    assert span.events[0].name == c.STATE_CHANGE_EVENT


def test_state_is_one_hot_and_failures_are_observed(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="orders", fail_max=5)
    cache = pybreaker.CircuitBreaker(name="stock")
    cache.open()
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(fail)
    states = {
        key: p.value
        for p in breaker_telemetry.points(c.BREAKER_STATUS.name)
        for key in [(p.attributes[c.BREAKER_NAME], p.attributes[c.BREAKER_STATE])]
        if key[0] in ("orders", "stock")
    }
    assert states == {
        ("orders", "closed"): 1,
        ("orders", "open"): 0,
        ("orders", "half_open"): 0,
        ("stock", "closed"): 0,
        ("stock", "open"): 1,
        ("stock", "half_open"): 0,
    }
    assert breaker_telemetry.values(c.BREAKER_CONSECUTIVE_FAILURES.name, c.BREAKER_NAME)[("orders",)] == 2


def test_unnamed_breakers_are_named_after_their_creation_site(breaker_telemetry: Telemetry) -> None:
    def make() -> pybreaker.CircuitBreaker:
        return pybreaker.CircuitBreaker()

    first, second = make(), make()
    first.call(lambda: None)
    second.call(lambda: None)
    names = {s.attributes[c.BREAKER_NAME] for s in breaker_telemetry.spans()}
    line = make.__code__.co_firstlineno + 1
    qualname = (
        make.__qualname__ if sys.version_info >= (3, 11) else make.__name__
    )  # no co_qualname before 3.11
    assert names == {f"{__name__}.{qualname}:{line}"}


def test_suppressed_calls_are_invisible(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="db")
    with suppress_instrumentation():
        assert breaker.call(lambda: 1) == 1
    assert breaker_telemetry.spans() == ()
    assert calls(breaker_telemetry) == {}


def test_listeners_are_untouched() -> None:
    listener = pybreaker.CircuitBreakerListener()
    breaker = pybreaker.CircuitBreaker(listeners=[listener])
    breaker.call(lambda: None)
    breaker.open()
    assert breaker.listeners == (listener,)


def test_uninstrument_restores_the_original_functions(telemetry: Telemetry) -> None:
    instrumentor = PyBreakerInstrumentor()
    instrumentor.uninstrument()
    originals = {
        (owner, name): owner.__dict__[name]
        for owner, name in [
            (pybreaker.CircuitBreaker, "__init__"),
            (pybreaker.CircuitBreaker, "call"),
            (pybreaker.CircuitBreaker, "call_async"),
            (pybreaker.CircuitBreaker, "is_system_error"),
            (pybreaker.CircuitBreaker, "_create_new_state"),
            (pybreaker.CircuitBreakerState, "before_call"),
        ]
    }
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    assert all(owner.__dict__[name] is not original for (owner, name), original in originals.items())
    instrumentor.uninstrument()
    assert all(owner.__dict__[name] is original for (owner, name), original in originals.items())
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )


def test_async_function_through_call_is_one_span(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="db")

    async def work() -> int:
        return 1

    coroutine = breaker.call(work)
    coroutine.close()
    del coroutine
    gc.collect()
    run_deferred()
    assert calls(breaker_telemetry) == {("closed", "unguarded", None): 1}, (
        "pybreaker counts the coroutine a success before it ran: the call is unguarded"
    )


def test_tornado_call_async(breaker_telemetry: Telemetry) -> None:
    from tornado import gen, ioloop

    breaker = pybreaker.CircuitBreaker(name="tornado", fail_max=1)

    @gen.coroutine
    def ok():  # type: ignore[no-untyped-def]
        yield gen.sleep(0.01)
        return "done"

    @gen.coroutine
    def broken():  # type: ignore[no-untyped-def]
        yield gen.sleep(0)
        raise Boom("async")

    async def main() -> None:
        assert await breaker.call_async(ok) == "done"
        with pytest.raises(pybreaker.CircuitBreakerError):
            await breaker.call_async(broken)
        with pytest.raises(pybreaker.CircuitBreakerError):
            await breaker.call_async(ok)

    ioloop.IOLoop.current().run_sync(main)
    assert calls(breaker_telemetry) == {
        ("closed", "success", None): 1,
        ("closed", "failure", f"{__name__}.Boom"): 1,
        ("open", "rejected", "pybreaker.CircuitBreakerError"): 1,
    }
    (ok_point,) = [
        p
        for p in breaker_telemetry.points(c.BREAKER_CALL_DURATION.name)
        if p.attributes[c.OUTCOME] == "success"
    ]
    assert ok_point.sum >= 0.01


def test_current_span_is_restored_after_calls(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="db")
    before = trace.get_current_span()
    breaker.call(lambda: None)
    with pytest.raises(Boom):
        breaker.call(fail)
    assert trace.get_current_span() is before


def test_closing_a_generator_follows_pybreakers_verdict(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="stream", exclude=[GeneratorExit])

    @breaker
    def rows() -> Iterator[int]:
        yield from range(10)

    generator = rows()
    next(generator)
    generator.close()
    breaker.call(lambda: None)
    assert breaker.fail_counter == 0
    assert calls(breaker_telemetry) == {
        ("closed", "ignored", "GeneratorExit"): 1,
        ("closed", "success", None): 1,
    }


def test_generator_dropped_before_it_started_counts_nothing(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="stream")

    @breaker
    def rows() -> Iterator[int]:
        yield 1

    generator = rows()
    del generator
    gc.collect()
    breaker.call(lambda: None)
    assert calls(breaker_telemetry) == {("closed", "success", None): 1}, "pybreaker counted nothing either"
    unstarted, called = breaker_telemetry.spans()
    assert c.OUTCOME not in (unstarted.attributes or {})
    assert called.attributes[c.OUTCOME] == "success"


def test_main_series_start_at_zero(breaker_telemetry: Telemetry) -> None:
    """Prometheus's rate() and increase() lose the first value of a series that starts above 0."""
    breaker = pybreaker.CircuitBreaker(name="fresh")
    breaker.call(lambda: None)
    calls = {
        (p.attributes[c.BREAKER_STATE], p.attributes[c.OUTCOME]): p.value
        for p in breaker_telemetry.points(c.BREAKER_CALLS.name)
        if p.attributes[c.BREAKER_NAME] == "fresh"
    }
    assert calls == {("closed", "success"): 1, ("half_open", "success"): 0, ("open", "rejected"): 0}
    transitions = {
        (p.attributes[c.BREAKER_PREVIOUS_STATE], p.attributes[c.BREAKER_STATE]): p.value
        for p in breaker_telemetry.points(c.BREAKER_TRANSITIONS.name)
        if p.attributes[c.BREAKER_NAME] == "fresh"
    }
    assert transitions == {
        ("closed", "open"): 0,
        ("open", "half_open"): 0,
        ("half_open", "closed"): 0,
        ("half_open", "open"): 0,
    }


def test_call_durations_carry_exemplars_of_their_spans(breaker_telemetry: Telemetry) -> None:
    breaker = pybreaker.CircuitBreaker(name="exemplary")
    with breaker_telemetry.tracer_provider.get_tracer("app").start_as_current_span("request"):
        breaker.call(int)
    (span,) = [s for s in breaker_telemetry.spans() if s.name == "exemplary"]
    (point,) = [p for p in breaker_telemetry.points(c.BREAKER_CALL_DURATION.name) if p.count]
    assert [(e.trace_id, e.span_id) for e in point.exemplars] == [
        (span.context.trace_id, span.context.span_id)
    ], "the exemplar names the call's span, not the request's"
