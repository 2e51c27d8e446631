"""What a user of the circuitbreaker (fabfuel) instrumentation sees: every call form, transitions, faults,
lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from circuitbreaker import CircuitBreaker, CircuitBreakerError, CircuitBreakerMonitor, circuit
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode

from otel_resilience import contract as c
from otel_resilience._kit import diagnostics
from otel_resilience.circuitbreaker import BreakerCallInfo, CircuitBreakerInstrumentor
from tests.support.cancellation import cancel_after
from tests.support.faulty import Broken, faulty_hook
from tests.support.telemetry import (
    Telemetry,
    assert_one_successful_breaker_call,
    instrumented_fixture,
    options_fixture,
    span_hook_infos,
)

MADE_BEFORE = CircuitBreaker(name="made_before", failure_threshold=1)


@MADE_BEFORE
def decorated_before(fail: bool) -> str:
    if fail:
        raise Boom("down")
    return "ok"


class Boom(Exception):
    pass


class Business(Exception):
    pass


cb_telemetry = instrumented_fixture(CircuitBreakerInstrumentor)
instrument = options_fixture(CircuitBreakerInstrumentor)


def calls(t: Telemetry, name: str) -> dict[tuple[object, ...], float]:
    return {
        key[1:]: value
        for key, value in t.values(
            c.BREAKER_CALLS.name, c.BREAKER_NAME, c.BREAKER_STATE, c.OUTCOME, c.ERROR_TYPE
        ).items()
        if key[0] == name
    }


def transitions(t: Telemetry, name: str) -> dict[tuple[object, ...], float]:
    return {
        key[1:]: value
        for key, value in t.values(
            c.BREAKER_TRANSITIONS.name, c.BREAKER_NAME, c.BREAKER_PREVIOUS_STATE, c.BREAKER_STATE
        ).items()
        if key[0] == name
    }


def spans_of(t: Telemetry, name: str) -> list[Any]:
    return [s for s in t.spans() if s.name == name]


def fail() -> None:
    raise Boom("down")


def test_success_is_a_span_and_a_count(cb_telemetry: Telemetry) -> None:
    @circuit(name="db")
    def double(x: int) -> int:
        return x * 2

    assert double(21) == 42
    assert_one_successful_breaker_call(cb_telemetry, "db")
    assert calls(cb_telemetry, "db") == {("closed", "success", None): 1}
    (duration,) = [p for p in cb_telemetry.points(c.BREAKER_CALL_DURATION.name) if p.count]
    assert tuple(duration.explicit_bounds) == c.DURATION_BUCKETS


def test_trip_reject_half_open_dated_when_it_became_true_and_recover(cb_telemetry: Telemetry) -> None:
    breaker = CircuitBreaker(name="db", failure_threshold=2, recovery_timeout=1)
    guarded = breaker(fail)
    with pytest.raises(Boom):
        guarded()
    before_opening = time.time_ns()
    with pytest.raises(Boom):
        guarded()
    after_opening = time.time_ns()
    with pytest.raises(CircuitBreakerError):
        guarded()
    time.sleep(1.3)
    assert breaker(lambda: 7)() == 7

    assert calls(cb_telemetry, "db") == {
        ("closed", "failure", "tests.unit.test_circuitbreaker.Boom"): 2,
        ("open", "rejected", "circuitbreaker.CircuitBreakerError"): 1,
        ("half_open", "success", None): 1,
    }
    assert transitions(cb_telemetry, "db") == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "closed"): 1,
    }
    (half_open,) = [
        e
        for s in cb_telemetry.spans()
        for e in s.events
        if e.name == c.STATE_CHANGE_EVENT and e.attributes[c.BREAKER_STATE] == "half_open"
    ]
    # It became true recovery_timeout after opening, not when it was first read (0.3 s later).
    # Converting the library's monotonic clock to wall-clock time reads two clocks one after the
    # other: a thread switch between them moves the result. 50 ms still tells 0.3 s apart.
    slack = 50_000_000
    assert before_opening - slack <= half_open.timestamp - 1_000_000_000 <= after_opening + slack
    rejected = [s for s in spans_of(cb_telemetry, "db") if s.attributes[c.OUTCOME] == "rejected"]
    assert rejected[0].status.status_code is StatusCode.ERROR
    assert c.BREAKER_FALLBACK not in rejected[0].attributes


def test_the_half_open_step_is_reported_once_however_often_it_is_read(cb_telemetry: Telemetry) -> None:
    breaker = CircuitBreaker(name="lazy", failure_threshold=1, recovery_timeout=1)
    with pytest.raises(Boom):
        breaker(fail)()
    breaker._opened -= 1  # as if a second had passed
    assert [breaker.state for _ in range(3)] == ["half_open"] * 3
    assert breaker.opened is False
    cb_telemetry.reader.collect()
    assert transitions(cb_telemetry, "lazy") == {("closed", "open"): 1, ("open", "half_open"): 1}


def test_the_status_metric_reports_the_computed_state(cb_telemetry: Telemetry) -> None:
    breaker = CircuitBreaker(name="gauge", failure_threshold=1, recovery_timeout=1)
    with pytest.raises(Boom):
        breaker(fail)()
    status = cb_telemetry.values(c.BREAKER_STATUS.name, c.BREAKER_NAME, c.BREAKER_STATE)
    assert status[("gauge", "open")] == 1
    breaker._opened -= 1
    status = cb_telemetry.values(c.BREAKER_STATUS.name, c.BREAKER_NAME, c.BREAKER_STATE)
    assert status[("gauge", "half_open")] == 1
    assert ("gauge", "open") not in status
    failures = cb_telemetry.values(c.BREAKER_CONSECUTIVE_FAILURES.name, c.BREAKER_NAME)
    assert failures[("gauge",)] == 1
    assert transitions(cb_telemetry, "gauge") == {("closed", "open"): 1, ("open", "half_open"): 1}


def test_fallback_served_rejections_are_rejected_and_marked(cb_telemetry: Telemetry) -> None:
    @circuit(name="fb", failure_threshold=1, fallback_function=lambda fail: "cached")
    def fetch(fail: bool) -> str:
        if fail:
            raise Boom("down")
        return "fresh"

    with pytest.raises(Boom):
        fetch(True)
    assert fetch(False) == "cached"
    assert calls(cb_telemetry, "fb") == {
        ("closed", "failure", "tests.unit.test_circuitbreaker.Boom"): 1,
        ("open", "rejected", None): 1,
    }
    (rejected,) = [s for s in spans_of(cb_telemetry, "fb") if s.attributes[c.OUTCOME] == "rejected"]
    assert rejected.attributes[c.BREAKER_FALLBACK] is True
    assert rejected.status.status_code is StatusCode.UNSET


async def test_async_calls_have_real_outcomes_and_fallbacks(cb_telemetry: Telemetry) -> None:
    async def cached(fail: bool) -> str:
        return "cached"

    @circuit(name="aio", failure_threshold=1, fallback_function=cached)
    async def fetch(fail: bool) -> str:
        await asyncio.sleep(0.01)
        if fail:
            raise Boom("down")
        return "fresh"

    assert await fetch(False) == "fresh"
    with pytest.raises(Boom):
        await fetch(True)
    assert await fetch(False) == "cached"
    assert calls(cb_telemetry, "aio") == {
        ("closed", "success", None): 1,
        ("closed", "failure", "tests.unit.test_circuitbreaker.Boom"): 1,
        ("open", "rejected", None): 1,
    }
    success = spans_of(cb_telemetry, "aio")[0]
    assert success.end_time - success.start_time >= 10_000_000  # the await is inside the call


async def test_concurrent_tasks_on_one_breaker_keep_their_own_calls(cb_telemetry: Telemetry) -> None:
    @circuit(name="tasks", failure_threshold=100)
    async def work(delay: float, fail: bool) -> float:
        with cb_telemetry.tracer_provider.get_tracer("app").start_as_current_span("inner"):
            await asyncio.sleep(delay)
        if fail:
            raise Boom("down")
        return delay

    results = await asyncio.gather(
        *(work(0.001 * (i % 5), i % 3 == 0) for i in range(30)), return_exceptions=True
    )
    assert sum(isinstance(r, Boom) for r in results) == 10
    assert calls(cb_telemetry, "tasks") == {
        ("closed", "success", None): 20,
        ("closed", "failure", "tests.unit.test_circuitbreaker.Boom"): 10,
    }
    call_spans = {s.context.span_id for s in spans_of(cb_telemetry, "tasks")}
    inner = spans_of(cb_telemetry, "inner")
    assert len(inner) == 30
    assert {s.parent.span_id for s in inner} == call_spans  # each inner span is its own call's child


def test_generators_are_measured_to_their_end_and_interleave(cb_telemetry: Telemetry) -> None:
    breaker = CircuitBreaker(name="gen", failure_threshold=10)

    @breaker
    def numbers(n: int, fail: bool = False) -> Iterator[int]:
        for i in range(n):
            time.sleep(0.005)
            yield i
        if fail:
            raise Boom("late")

    first, second = numbers(3), numbers(2, fail=True)
    assert next(first) == 0
    assert next(second) == 0
    assert cb_telemetry.spans() == ()  # neither has ended
    assert list(first) == [1, 2]
    with pytest.raises(Boom):
        list(second)
    assert calls(cb_telemetry, "gen") == {
        ("closed", "success", None): 1,
        ("closed", "failure", "tests.unit.test_circuitbreaker.Boom"): 1,
    }
    success = next(s for s in spans_of(cb_telemetry, "gen") if s.attributes[c.OUTCOME] == "success")
    assert success.end_time - success.start_time >= 15_000_000
    assert trace.get_current_span() is trace.INVALID_SPAN  # the generator never left its span current


def test_a_generator_closed_early_is_ignored_as_the_library_resets(cb_telemetry: Telemetry) -> None:
    @circuit(name="early")
    def numbers() -> Iterator[int]:
        yield from range(10)

    stream = numbers()
    assert next(stream) == 0
    stream.close()
    assert calls(cb_telemetry, "early") == {("closed", "ignored", "GeneratorExit"): 1}


async def test_async_generators(cb_telemetry: Telemetry) -> None:
    @circuit(name="agen", failure_threshold=1)
    async def numbers(fail: bool) -> Any:
        yield 1
        if fail:
            raise Boom("late")
        yield 2

    assert [x async for x in numbers(False)] == [1, 2]
    with pytest.raises(Boom):
        [x async for x in numbers(True)]
    with pytest.raises(CircuitBreakerError):
        [x async for x in numbers(False)]
    assert calls(cb_telemetry, "agen") == {
        ("closed", "success", None): 1,
        ("closed", "failure", "tests.unit.test_circuitbreaker.Boom"): 1,
        ("open", "rejected", "circuitbreaker.CircuitBreakerError"): 1,
    }


def test_with_breaker_never_rejects_and_a_failure_while_open_reopens(cb_telemetry: Telemetry) -> None:
    breaker = CircuitBreaker(failure_threshold=1)  # never decorated: no name of its own
    for _ in range(2):
        with pytest.raises(Boom), breaker:
            fail()
    with breaker:
        pass
    (name,) = {s.attributes[c.BREAKER_NAME] for s in cb_telemetry.spans() if c.OUTCOME in s.attributes}
    assert name.startswith("tests.unit.test_circuitbreaker.test_with_breaker_never_rejects")
    assert calls(cb_telemetry, name) == {
        ("closed", "failure", "tests.unit.test_circuitbreaker.Boom"): 1,
        ("open", "failure", "tests.unit.test_circuitbreaker.Boom"): 1,
        ("open", "success", None): 1,
    }
    assert transitions(cb_telemetry, name) == {
        ("closed", "open"): 1,
        ("open", "open"): 1,
        ("open", "closed"): 1,
    }


def test_an_exit_stack_enters_and_exits_for_the_frame_that_holds_it(cb_telemetry: Telemetry) -> None:
    breaker = CircuitBreaker(name="stacked")
    for _ in range(3):
        with contextlib.ExitStack() as stack:
            stack.enter_context(breaker)
    assert calls(cb_telemetry, "stacked") == {("closed", "success", None): 3}
    from otel_resilience._kit.instruments import active_recorder

    recorder: Any = active_recorder("otel_resilience.circuitbreaker")
    assert recorder.active == {}  # no call left open


def test_a_non_failure_exception_is_ignored_and_closes_the_breaker(cb_telemetry: Telemetry) -> None:
    asked: list[type[BaseException]] = []

    def is_failure(exc_type: type[BaseException], exc: BaseException) -> bool:
        asked.append(exc_type)
        return issubclass(exc_type, Boom)

    breaker = CircuitBreaker(name="pred", failure_threshold=1, expected_exception=is_failure)
    with pytest.raises(Boom), breaker:
        fail()
    with pytest.raises(Business), breaker:
        raise Business("not ours")
    assert asked == [Boom, Business]  # the predicate is asked once per exception, as without us
    assert breaker.state == "closed"
    assert calls(cb_telemetry, "pred") == {
        ("closed", "failure", "tests.unit.test_circuitbreaker.Boom"): 1,
        ("open", "ignored", "tests.unit.test_circuitbreaker.Business"): 1,
    }
    assert transitions(cb_telemetry, "pred") == {("closed", "open"): 1, ("open", "closed"): 1}
    ignored = next(s for s in spans_of(cb_telemetry, "pred") if s.attributes[c.OUTCOME] == "ignored")
    assert ignored.status.status_code is StatusCode.UNSET


async def test_cancellation_is_ignored_and_not_an_error(cb_telemetry: Telemetry) -> None:
    @circuit(name="cancel")
    async def slow() -> None:
        await asyncio.sleep(10)

    await cancel_after(0.01, slow)
    (span,) = spans_of(cb_telemetry, "cancel")
    assert span.attributes[c.OUTCOME] == "ignored"
    assert span.status.status_code is StatusCode.UNSET


def test_exceptions_are_unchanged(cb_telemetry: Telemetry) -> None:
    original = Boom("down")

    @circuit(name="same", failure_threshold=5)
    def raising() -> None:
        try:
            raise KeyError("inner")
        except KeyError:
            raise original  # noqa: B904

    with pytest.raises(Boom) as caught:
        raising()
    assert caught.value is original
    assert isinstance(caught.value.__context__, KeyError)
    assert [f.name for f in caught.traceback][-1] == "raising"


def test_breakers_made_and_functions_decorated_before_instrumenting(cb_telemetry: Telemetry) -> None:
    assert CircuitBreakerMonitor.get("made_before") is MADE_BEFORE
    assert decorated_before(False) == "ok"
    with pytest.raises(Boom):
        decorated_before(True)
    with pytest.raises(CircuitBreakerError):
        decorated_before(False)
    MADE_BEFORE.reset()
    assert calls(cb_telemetry, "made_before") == {
        ("closed", "success", None): 1,
        ("closed", "failure", "tests.unit.test_circuitbreaker.Boom"): 1,
        ("open", "rejected", "circuitbreaker.CircuitBreakerError"): 1,
    }
    assert transitions(cb_telemetry, "made_before") == {("closed", "open"): 1, ("open", "closed"): 1}


def test_transition_logs(cb_telemetry: Telemetry, caplog: pytest.LogCaptureFixture) -> None:
    breaker = CircuitBreaker(name="logged", failure_threshold=1)
    with caplog.at_level(logging.INFO, logger="otel_resilience"), pytest.raises(Boom):
        breaker(fail)()
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "circuit breaker 'logged' changed state: closed -> open")
    ]


def test_span_hook_and_suppression(instrument: Any) -> None:
    seen: list[BreakerCallInfo] = span_hook_infos(instrument)
    breaker = CircuitBreaker(name="hooked", failure_threshold=1, fallback_function=lambda: 0)
    with pytest.raises(Boom):
        breaker(fail)()
    assert breaker(lambda: 1)() == 0
    with suppress_instrumentation():
        assert breaker(lambda: 1)() == 0
    assert [(i.name, i.state, i.outcome, type(i.error), i.fallback) for i in seen] == [
        ("hooked", "closed", "failure", Boom, False),
        ("hooked", "open", "rejected", type(None), True),
    ]
    assert all(i.breaker is breaker for i in seen)


def test_rejections_are_registered_for_retry_diagnostics(cb_telemetry: Telemetry) -> None:
    assert CircuitBreakerError in diagnostics.rejection_errors


def test_metrics_only(instrument: Any) -> None:
    telemetry: Telemetry = instrument(metrics_only=True)
    breaker = CircuitBreaker(name="quiet", failure_threshold=1)
    with pytest.raises(Boom):
        breaker(fail)()
    assert telemetry.spans() == ()
    assert calls(telemetry, "quiet") == {("closed", "failure", "tests.unit.test_circuitbreaker.Boom"): 1}


# -- faults -------------------------------------------------------------------------------------


@pytest.mark.faults
def test_a_failing_meter_never_reaches_the_application(
    cb_telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from otel_resilience._kit.instruments import active_recorder

    recorder: Any = active_recorder("otel_resilience.circuitbreaker")

    monkeypatch.setattr(recorder, "calls", Broken())
    monkeypatch.setattr(recorder, "transitions", Broken())
    breaker = CircuitBreaker(name="faulty", failure_threshold=1, fallback_function=lambda: "fb")
    with caplog.at_level(logging.WARNING, logger="otel_resilience"):
        with pytest.raises(Boom):
            breaker(fail)()
        assert breaker(lambda: 1)() == "fb"
        breaker.reset()
        assert breaker(lambda: 1)() == 1
    faults = [r for r in caplog.records if "telemetry failed" in r.getMessage()]
    assert faults
    assert len({r.getMessage().splitlines()[0] for r in faults}) == len(faults)  # each logged once


@pytest.mark.faults
def test_a_failing_span_hook_is_contained(instrument: Any) -> None:
    telemetry: Telemetry = instrument(span_hook=faulty_hook)
    assert circuit(name="hook")(lambda: 5)() == 5
    assert len(telemetry.spans()) == 1


# -- lifecycle ------------------------------------------------------------------------------------
