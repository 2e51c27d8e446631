"""What a user of the aiobreaker instrumentation sees: call forms, the half-open re-entry as one call,
transitions, faults, lifecycle."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiobreaker import CircuitBreaker, CircuitBreakerError, CircuitBreakerListener
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode

from otel_resilience import contract as c
from otel_resilience._kit import diagnostics
from otel_resilience.aiobreaker import AioBreakerCallInfo, AioBreakerInstrumentor
from tests.support.cancellation import cancel_after
from tests.support.faulty import Broken
from tests.support.telemetry import Telemetry, instrumented_fixture, options_fixture, span_hook_infos

MADE_BEFORE = CircuitBreaker(fail_max=1, name="made_before")
BOOM = "tests.unit.test_aiobreaker.Boom"
REJECTED = "aiobreaker.state.CircuitBreakerError"


class Boom(Exception):
    pass


class Business(Exception):
    pass


ab_telemetry = instrumented_fixture(AioBreakerInstrumentor)
instrument = options_fixture(AioBreakerInstrumentor)


def calls(t: Telemetry, name: str) -> dict[tuple[object, ...], float]:
    values = t.values(c.BREAKER_CALLS.name, c.BREAKER_NAME, c.BREAKER_STATE, c.OUTCOME, c.ERROR_TYPE)
    return {key[1:]: value for key, value in values.items() if key[0] == name}


def transitions(t: Telemetry, name: str) -> dict[tuple[object, ...], float]:
    values = t.values(c.BREAKER_TRANSITIONS.name, c.BREAKER_NAME, c.BREAKER_PREVIOUS_STATE, c.BREAKER_STATE)
    return {key[1:]: value for key, value in values.items() if key[0] == name}


async def boom() -> None:
    await asyncio.sleep(0)
    raise Boom("down")


def fail() -> None:
    raise Boom("down")


async def test_trip_reject_probe_and_recover_is_one_call_each(ab_telemetry: Telemetry) -> None:
    breaker = CircuitBreaker(fail_max=2, timeout_duration=timedelta(seconds=0.05), name="svc")
    with pytest.raises(Boom):
        await breaker.call_async(boom)
    with pytest.raises(CircuitBreakerError) as tripped:
        await breaker.call_async(boom)
    assert isinstance(tripped.value.__cause__, Boom)
    with pytest.raises(CircuitBreakerError) as rejected:
        await breaker.call_async(boom)
    assert rejected.value.__cause__ is None
    await asyncio.sleep(0.06)

    async def ok() -> int:
        return 1

    assert await breaker.call_async(ok) == 1  # open -> half-open re-enters call_async: one call
    assert calls(ab_telemetry, "svc") == {
        ("closed", "failure", BOOM): 2,
        ("open", "rejected", REJECTED): 1,
        ("half_open", "success", None): 1,
    }
    assert transitions(ab_telemetry, "svc") == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "closed"): 1,
    }
    spans = [s for s in ab_telemetry.spans() if s.name == "svc"]
    assert len(spans) == 4
    probe = spans[-1]
    assert [e.attributes[c.BREAKER_STATE] for e in probe.events if e.name == c.STATE_CHANGE_EVENT] == [
        "half_open",
        "closed",
    ]
    trip = spans[1]
    assert trip.attributes[c.ERROR_TYPE] == BOOM  # the original, not the CircuitBreakerError raised from it
    assert trip.status.status_code is StatusCode.ERROR


def test_sync_calls_decorator_and_excluded_exceptions(ab_telemetry: Telemetry) -> None:
    breaker = CircuitBreaker(fail_max=3, exclude=[Business], name="sync")

    @breaker
    def work(kind: str) -> str:
        if kind == "boom":
            raise Boom("down")
        if kind == "business":
            raise Business("not ours")
        return kind

    assert work("ok") == "ok"
    with pytest.raises(Boom):
        work("boom")
    with pytest.raises(Business):
        work("business")
    assert breaker.call(work, "ok") == "ok"  # the decorated function through call: one call
    assert breaker.fail_counter == 0  # the excluded exception counted as a success, as aiobreaker does
    assert calls(ab_telemetry, "sync") == {
        ("closed", "success", None): 2,
        ("closed", "failure", BOOM): 1,
        ("closed", "ignored", "tests.unit.test_aiobreaker.Business"): 1,
    }
    ignored = next(s for s in ab_telemetry.spans() if s.attributes.get(c.OUTCOME) == "ignored")
    assert ignored.status.status_code is StatusCode.UNSET


async def test_an_exclusion_predicate_is_asked_once(ab_telemetry: Telemetry) -> None:
    asked: list[BaseException] = []

    def soft(exc: BaseException) -> bool:
        asked.append(exc)
        return False

    breaker = CircuitBreaker(fail_max=5, exclude=[soft], name="pred")
    with pytest.raises(Boom):
        await breaker.call_async(boom)
    assert len(asked) == 1


def test_generators_are_followed_to_their_end(ab_telemetry: Telemetry) -> None:
    breaker = CircuitBreaker(fail_max=5, name="gen")

    def numbers(fail: bool) -> Iterator[int]:
        yield 1
        time.sleep(0.01)
        if fail:
            raise Boom("late")
        yield 2

    assert list(breaker.call(numbers, False)) == [1, 2]
    with pytest.raises(Boom):
        list(breaker.call(numbers, True))
    assert calls(ab_telemetry, "gen") == {("closed", "success", None): 1, ("closed", "failure", BOOM): 1}
    success = next(s for s in ab_telemetry.spans() if s.attributes.get(c.OUTCOME) == "success")
    assert success.end_time - success.start_time >= 10_000_000


async def test_a_call_the_function_makes_through_its_own_breaker_is_a_call_of_its_own(
    ab_telemetry: Telemetry,
) -> None:
    breaker = CircuitBreaker(name="nested")

    def inner() -> int:
        return 1

    async def inner_async() -> int:
        return 1

    def outer() -> int:
        return breaker.call(inner) + 1

    async def outer_async() -> int:
        return await breaker.call_async(inner_async) + 1

    assert breaker.call(outer) == 2
    assert await breaker.call_async(outer_async) == 2
    assert calls(ab_telemetry, "nested") == {("closed", "success", None): 4}
    spans = {s.context.span_id: s for s in ab_telemetry.spans()}
    nested = [s for s in spans.values() if s.parent is not None and s.parent.span_id in spans]
    assert len(nested) == 2, "each inner call's span is a child of the outer call's"


async def test_cancellation_is_neither_counted_nor_an_error(ab_telemetry: Telemetry) -> None:
    breaker = CircuitBreaker(name="cancel")

    async def slow() -> None:
        await asyncio.sleep(10)

    await cancel_after(0.01, lambda: breaker.call_async(slow))
    (span,) = [s for s in ab_telemetry.spans() if s.name == "cancel"]
    assert span.attributes[c.OUTCOME] == "ignored"
    assert span.status.status_code is StatusCode.UNSET


async def test_concurrent_tasks_in_half_open_are_each_a_probe(ab_telemetry: Telemetry) -> None:
    breaker = CircuitBreaker(fail_max=1, timeout_duration=timedelta(seconds=0.01), name="herd")
    with pytest.raises(CircuitBreakerError):
        await breaker.call_async(boom)
    await asyncio.sleep(0.02)
    breaker.half_open()

    async def ok() -> int:
        await asyncio.sleep(0.01)
        return 1

    assert await asyncio.gather(*(breaker.call_async(ok) for _ in range(5))) == [1] * 5
    assert calls(ab_telemetry, "herd")[("half_open", "success", None)] == 5


def test_manual_transitions_listeners_and_logs(
    ab_telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, str]] = []

    class Listener(CircuitBreakerListener):
        def state_change(self, cb: Any, old: Any, new: Any) -> None:
            seen.append((old.state.name, new.state.name))

    breaker = CircuitBreaker(name="manual", listeners=[Listener()])
    with caplog.at_level(logging.INFO, logger="otel_resilience"):
        breaker.open()
        breaker.half_open()
        breaker.close()
    assert seen == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]
    assert breaker.listeners == tuple(breaker._listeners)  # nothing of ours among them
    assert transitions(ab_telemetry, "manual") == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "closed"): 1,
    }
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO, logging.INFO]


def test_breakers_made_before_instrumenting_and_the_status_metric(ab_telemetry: Telemetry) -> None:
    with pytest.raises(CircuitBreakerError):
        MADE_BEFORE.call(fail)
    status = ab_telemetry.values(c.BREAKER_STATUS.name, c.BREAKER_NAME, c.BREAKER_STATE)
    assert status[("made_before", "open")] == 1
    failures = ab_telemetry.values(c.BREAKER_CONSECUTIVE_FAILURES.name, c.BREAKER_NAME)
    assert failures[("made_before",)] == 1
    MADE_BEFORE.close()
    assert calls(ab_telemetry, "made_before") == {("closed", "failure", BOOM): 1}


def test_unnamed_breakers_are_named_after_their_creation_site(ab_telemetry: Telemetry) -> None:
    breaker = CircuitBreaker()
    breaker.call(int)
    (span,) = ab_telemetry.spans()
    assert span.name.startswith("tests.unit.test_aiobreaker.test_unnamed_breakers_are_named")


def test_exceptions_are_unchanged(ab_telemetry: Telemetry) -> None:
    original = Boom("down")

    def raising() -> None:
        raise original

    breaker = CircuitBreaker(fail_max=1, name="same")
    with pytest.raises(CircuitBreakerError) as caught:
        breaker.call(raising)
    assert caught.value.__cause__ is original


def test_span_hook_suppression_and_rejection_registry(instrument: Any) -> None:
    seen: list[AioBreakerCallInfo] = span_hook_infos(instrument)
    assert CircuitBreakerError in diagnostics.rejection_errors
    breaker = CircuitBreaker(fail_max=1, name="hooked")
    with pytest.raises(CircuitBreakerError):
        breaker.call(fail)
    with suppress_instrumentation(), pytest.raises(CircuitBreakerError):
        breaker.call(fail)
    assert [(i.name, i.state, i.outcome, type(i.error)) for i in seen] == [
        ("hooked", "closed", "failure", Boom)
    ]


@pytest.mark.faults
def test_a_failing_meter_never_reaches_the_application(
    ab_telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otel_resilience._kit.instruments import active_recorder

    recorder: Any = active_recorder("otel_resilience.aiobreaker")

    monkeypatch.setattr(recorder, "calls", Broken())
    monkeypatch.setattr(recorder, "transitions", Broken())
    breaker = CircuitBreaker(fail_max=1, name="faulty")
    with pytest.raises(CircuitBreakerError):
        breaker.call(fail)
    with pytest.raises(CircuitBreakerError):
        breaker.call(fail)
    breaker.close()
    assert breaker.call(lambda: 3) == 3


# -- lifecycle ------------------------------------------------------------------------------------
