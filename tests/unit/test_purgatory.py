"""What a user of the purgatory instrumentation sees: sync and async factories, memory and Redis storage."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import traceback
from collections.abc import Iterator
from typing import Any

import purgatory.domain.model
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, suppress_instrumentation
from opentelemetry.trace import StatusCode
from purgatory import (
    AsyncCircuitBreakerFactory,
    AsyncRedisUnitOfWork,
    SyncCircuitBreakerFactory,
    SyncRedisUnitOfWork,
)
from purgatory.domain.model import ClosedState, Context, HalfOpenedState, OpenedState

from otel_resilience import contract as c
from otel_resilience._kit import diagnostics
from otel_resilience.purgatory import PurgatoryCallInfo, PurgatoryInstrumentor
from otel_resilience.purgatory._telemetry import Call
from tests.support.cancellation import cancel_after
from tests.support.cycles import assert_cycles_restore_every_original
from tests.support.faulty import break_recorder_part
from tests.support.redis_server import redis_server
from tests.support.telemetry import Telemetry, instrumented_fixture, options_fixture, span_hook_infos

REJECTED = "purgatory.domain.model.OpenedState"


class Boom(Exception):
    pass


class Excluded(Exception):
    pass


instrumented = instrumented_fixture(PurgatoryInstrumentor)
instrument = options_fixture(PurgatoryInstrumentor)


def calls(telemetry: Telemetry) -> dict[tuple[Any, ...], float]:
    return telemetry.values("resilience.circuit_breaker.calls", c.BREAKER_NAME, c.BREAKER_STATE, c.OUTCOME)


def transitions(telemetry: Telemetry) -> dict[tuple[Any, ...], float]:
    return telemetry.values(
        "resilience.circuit_breaker.transitions", c.BREAKER_STATE, c.BREAKER_PREVIOUS_STATE
    )


def breaker_spans(telemetry: Telemetry) -> list[Any]:
    return [s for s in telemetry.spans() if c.OUTCOME in (s.attributes or {})]


TTL = 60.0
"""Longer than any stall between a trip and the next call: a TTL ends only when a test says so."""


class PurgatoryClock:
    """purgatory's clock, moved past the TTL at once by :meth:`pass_ttl`: no test waits for it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def pass_ttl(self) -> None:
        self.offset += TTL + 1


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> PurgatoryClock:
    clock = PurgatoryClock()
    monkeypatch.setattr(purgatory.domain.model, "time", clock)
    return clock


def scenario(factory: SyncCircuitBreakerFactory, clock: PurgatoryClock) -> list[str]:
    """Success, excluded, two failures (trip), rejection, half-open probe success: what each call did."""

    @factory("payments", threshold=2, ttl=TTL, exclude=[Excluded])
    def pay(step: Any) -> Any:
        if isinstance(step, BaseException):
            raise step
        return step

    seen = []
    for step in ["ok", Excluded(), Boom(), Boom(), "rejected?", "ttl ends", "ok"]:
        if step == "ttl ends":
            clock.pass_ttl()
            continue
        try:
            seen.append(pay(step))
        except OpenedState:
            seen.append("rejected")
        except (Boom, Excluded) as exc:
            seen.append(type(exc).__name__)
    return seen


EXPECTED_SEEN = ["ok", "Excluded", "Boom", "Boom", "rejected", "ok"]
"""What the application sees of the scenario's calls."""
EXPECTED_CALLS = {
    ("payments", "closed", "success"): 1,
    ("payments", "closed", "ignored"): 1,
    ("payments", "closed", "failure"): 2,
    ("payments", "open", "rejected"): 1,
    ("payments", "half_open", "success"): 1,
}
EXPECTED_TRANSITIONS = {("open", "closed"): 1, ("half_open", "open"): 1, ("closed", "half_open"): 1}


def test_sync_memory_scenario(instrumented: Telemetry, clock: PurgatoryClock) -> None:
    assert scenario(SyncCircuitBreakerFactory(), clock) == EXPECTED_SEEN
    assert calls(instrumented) == EXPECTED_CALLS
    assert transitions(instrumented) == EXPECTED_TRANSITIONS
    spans = breaker_spans(instrumented)
    rejected = next(s for s in spans if s.attributes[c.OUTCOME] == "rejected")
    assert rejected.attributes[c.ERROR_TYPE] == REJECTED
    assert rejected.status.status_code is StatusCode.ERROR
    ignored = next(s for s in spans if s.attributes[c.OUTCOME] == "ignored")
    assert ignored.status.status_code is StatusCode.UNSET
    tripping = [s for s in spans if s.attributes[c.OUTCOME] == "failure"][-1]
    assert sorted(e.name for e in tripping.events) == [c.STATE_CHANGE_EVENT, "exception"]
    assert instrumented.values("resilience.circuit_breaker.status", c.BREAKER_STATE) == {("closed",): 1}


def test_async_memory_scenario(instrumented: Telemetry, clock: PurgatoryClock) -> None:
    factory = AsyncCircuitBreakerFactory()

    @factory("payments", threshold=2, ttl=TTL, exclude=[Excluded])
    async def pay(step: Any) -> Any:
        await asyncio.sleep(0)
        if isinstance(step, BaseException):
            raise step
        return step

    async def main() -> list[Any]:
        seen: list[Any] = []
        for step in ["ok", Excluded(), Boom(), Boom(), "x", "ttl ends", "ok"]:
            if step == "ttl ends":
                clock.pass_ttl()
                continue
            try:
                seen.append(await pay(step))
            except OpenedState:
                seen.append("rejected")
            except (Boom, Excluded) as exc:
                seen.append(type(exc).__name__)
        return seen

    assert asyncio.run(main()) == EXPECTED_SEEN
    assert calls(instrumented) == EXPECTED_CALLS
    assert transitions(instrumented) == EXPECTED_TRANSITIONS


def test_app_spans_are_children_and_context_restored(instrumented: Telemetry) -> None:
    app = trace.get_tracer("app", tracer_provider=instrumented.tracer_provider)
    factory = SyncCircuitBreakerFactory()
    with factory.get_breaker("db"), app.start_as_current_span("query"):
        pass
    assert trace.get_current_span() is trace.INVALID_SPAN
    [breaker] = breaker_spans(instrumented)
    [query] = [s for s in instrumented.spans() if s.name == "query"]
    assert query.parent.span_id == breaker.context.span_id
    assert breaker.name == "db"
    assert breaker.attributes[c.OUTCOME] == "success"


def test_rejection_is_the_same_object_and_registered(instrumented: Telemetry) -> None:
    factory = SyncCircuitBreakerFactory(default_threshold=1, default_ttl=60)
    with pytest.raises(Boom), factory.get_breaker("x"):
        raise Boom()
    errors = []
    for _ in range(3):
        try:
            with factory.get_breaker("x"):
                pass
        except OpenedState as exc:
            errors.append(exc)
    assert errors[0] is errors[1] is errors[2]
    assert OpenedState in diagnostics.rejection_errors
    assert calls(instrumented)[("x", "open", "rejected")] == 3


class _RejectsWhileAnotherThreadHalfOpens(OpenedState):
    """An open state that rejects, while another thread half-opens the shared ``Context``.

    With memory storage threads share the ``Context`` without a lock: between purgatory's
    ``raise`` and the end of ``__enter__``, another thread can move the state on.
    """

    def handle_new_request(self, context: Context) -> None:
        context._state = HalfOpenedState()
        raise self


def test_a_rejection_stays_a_rejection_when_another_thread_moves_the_state_on(
    instrumented: Telemetry,
) -> None:
    context = Context("x", threshold=1, ttl=60)
    context._state = _RejectsWhileAnotherThreadHalfOpens("x")
    with pytest.raises(OpenedState), context:
        pass
    assert calls(instrumented) == {("x", "open", "rejected"): 1}
    [span] = breaker_spans(instrumented)
    assert span.status.status_code is StatusCode.ERROR
    assert not span.events  # a rejection's span carries no exception event


class _AdmitsWhileAnotherThreadTrips(ClosedState):
    """A closed state that admits the call, while another thread trips the shared ``Context``."""

    def handle_new_request(self, context: Context) -> None:
        context._state = OpenedState(context.name)


def test_a_call_admitted_closed_is_not_reported_open_when_another_thread_trips_meanwhile(
    instrumented: Telemetry,
) -> None:
    context = Context("z", threshold=1, ttl=60)
    context._state = _AdmitsWhileAnotherThreadTrips()
    with context:
        pass
    assert calls(instrumented) == {("z", "closed", "success"): 1}


def test_an_error_entering_a_breaker_is_a_failure_even_when_it_is_open(instrumented: Telemetry) -> None:
    class Broken(OpenedState):
        def handle_new_request(self, context: Context) -> None:
            raise Boom()

    context = Context("y", threshold=1, ttl=60)
    context._state = Broken("y")
    with pytest.raises(Boom), context:
        pass
    assert calls(instrumented) == {("y", "open", "failure"): 1}


def test_a_rejection_keeps_nothing_of_its_call_alive(instrumented: Telemetry) -> None:
    """purgatory raises one ``OpenedState`` for all the calls an opening rejects, and every raise adds
    the frames it passes through to that exception's traceback, until the breaker half-opens. Ours is
    one frame per rejection, and it holds nothing of the call."""
    factory = SyncCircuitBreakerFactory(default_threshold=1, default_ttl=60)
    with pytest.raises(Boom), factory.get_breaker("storm"):
        raise Boom()
    for _ in range(100):
        with pytest.raises(OpenedState) as rejected, factory.get_breaker("storm"):
            pass
    ours = [
        frame
        for frame, _ in traceback.walk_tb(rejected.value.__traceback__)
        if frame.f_globals["__name__"].startswith("otel_resilience")
    ]
    assert len(ours) == 100
    held = {"call", "wrapped", "instance", "args", "kwargs"}
    assert not [frame for frame in ours if held & frame.f_locals.keys()]
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, Call)]
    assert calls(instrumented)[("storm", "open", "rejected")] == 100


def test_suppressed_instrumentation_records_nothing(instrumented: Telemetry) -> None:
    factory = SyncCircuitBreakerFactory(default_threshold=1, default_ttl=60)
    with suppress_instrumentation():
        with pytest.raises(Boom), factory.get_breaker("quiet"):
            raise Boom()
        with pytest.raises(OpenedState), factory.get_breaker("quiet"):
            pass
    assert calls(instrumented) == {}
    assert transitions(instrumented) == {}
    assert breaker_spans(instrumented) == []
    with pytest.raises(OpenedState), factory.get_breaker("quiet"):
        pass
    assert calls(instrumented) == {("quiet", "open", "rejected"): 1}


def test_a_suppressed_call_inside_a_recorded_one_of_the_same_breaker_leaves_it_alone(
    instrumented: Telemetry,
) -> None:
    """With memory storage, every call of a circuit enters the same ``Context``: the suppressed
    inner call's ``__exit__`` is its own, not the end of the recorded outer call."""
    factory = SyncCircuitBreakerFactory(default_threshold=5)
    inside: list[bool] = []

    @factory("nested")
    def inner() -> None:
        raise Boom()

    @factory("nested")
    def outer() -> None:
        with suppress_instrumentation():
            with pytest.raises(Boom):
                inner()
            inside.append(is_instrumentation_enabled())
        raise Excluded()

    with pytest.raises(Excluded):
        outer()
    assert inside == [False]
    assert trace.get_current_span() is trace.INVALID_SPAN
    assert calls(instrumented) == {("nested", "closed", "failure"): 1}
    [span] = breaker_spans(instrumented)
    assert span.attributes[c.ERROR_TYPE] == f"{__name__}.Excluded"


def test_suppressed_calls_of_other_breakers_leave_a_recorded_call_alone(instrumented: Telemetry) -> None:
    factory = SyncCircuitBreakerFactory(default_threshold=5, exclude=[Excluded])

    def generator() -> Iterator[int]:
        with factory.get_breaker("other"):
            yield 1
            yield 2

    def recorded_call() -> None:
        with factory.get_breaker("recorded"):
            with suppress_instrumentation():
                next(outliving)  # a suppressed call that ends after the recorded one
                with pytest.raises(Boom), factory.get_breaker("other"):
                    raise Boom()  # a failure purgatory counts, of another breaker
            raise Excluded()

    outliving = generator()
    with pytest.raises(Excluded):
        recorded_call()
    assert trace.get_current_span() is trace.INVALID_SPAN
    outliving.close()
    assert calls(instrumented) == {("recorded", "closed", "ignored"): 1}


def test_the_gauges_follow_calls_made_under_suppression(instrumented: Telemetry) -> None:
    factory = SyncCircuitBreakerFactory(default_ttl=60)
    thresholds = {"tripped": 2, "failing": 5}
    for name, threshold in thresholds.items():
        with factory.get_breaker(name, threshold=threshold):
            pass  # recorded: the breakers are known
    with suppress_instrumentation():
        for name in thresholds:
            for _ in range(2):
                with pytest.raises(Boom), factory.get_breaker(name):
                    raise Boom()
    status = instrumented.values("resilience.circuit_breaker.status", c.BREAKER_NAME, c.BREAKER_STATE)
    assert status == {("tripped", "open"): 1, ("failing", "closed"): 1}
    failures = instrumented.values("resilience.circuit_breaker.consecutive_failures", c.BREAKER_NAME)
    assert failures == {("failing",): 2}
    assert transitions(instrumented) == {}
    assert calls(instrumented) == {("tripped", "closed", "success"): 1, ("failing", "closed", "success"): 1}


def test_a_breaker_used_only_under_suppression_is_not_reported(instrument: Any) -> None:
    telemetry: Telemetry = instrument(max_names=2)
    factory = SyncCircuitBreakerFactory(default_threshold=1, default_ttl=60)
    with suppress_instrumentation(), pytest.raises(Boom), factory.get_breaker("exporter"):
        raise Boom()
    for name in ("payments", "inventory"):
        with factory.get_breaker(name):
            pass
    assert calls(telemetry) == {("payments", "closed", "success"): 1, ("inventory", "closed", "success"): 1}
    status = telemetry.values("resilience.circuit_breaker.status", c.BREAKER_NAME, c.BREAKER_STATE)
    assert status == {("payments", "closed"): 1, ("inventory", "closed"): 1}


def test_span_hook_and_states(instrument: Any, clock: PurgatoryClock) -> None:
    infos: list[PurgatoryCallInfo] = span_hook_infos(instrument)
    scenario(SyncCircuitBreakerFactory(), clock)
    assert [(i.state, i.outcome) for i in infos] == [
        ("closed", "success"),
        ("closed", "ignored"),
        ("closed", "failure"),
        ("closed", "failure"),
        ("open", "rejected"),
        ("half_open", "success"),
    ]
    assert all(isinstance(i.context, Context) for i in infos)


def test_consecutive_failures_gauge(instrumented: Telemetry) -> None:
    factory = SyncCircuitBreakerFactory(default_threshold=5)
    for _ in range(3):
        with pytest.raises(Boom), factory.get_breaker("f"):
            raise Boom()
    assert instrumented.values("resilience.circuit_breaker.consecutive_failures", c.BREAKER_NAME) == {
        ("f",): 3
    }


def test_cancellation_is_purgatorys_failure(instrumented: Telemetry) -> None:
    factory = AsyncCircuitBreakerFactory()

    @factory("slow")
    async def slow() -> None:
        await asyncio.sleep(10)

    asyncio.run(cancel_after(0.01, slow))
    assert calls(instrumented) == {("slow", "closed", "failure"): 1}
    [span] = breaker_spans(instrumented)
    assert span.status.status_code is StatusCode.UNSET


def test_transition_logged(instrumented: Telemetry, caplog: pytest.LogCaptureFixture) -> None:
    factory = SyncCircuitBreakerFactory(default_threshold=1)
    with (
        caplog.at_level(logging.INFO, logger="otel_resilience"),
        pytest.raises(Boom),
        factory.get_breaker("t"),
    ):
        raise Boom()
    assert any("closed -> open" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_listeners_untouched(instrumented: Telemetry) -> None:
    events: list[tuple[str, str]] = []
    factory = SyncCircuitBreakerFactory(default_threshold=1)
    factory.add_listener(lambda name, kind, event: events.append((name, kind)))
    before = {k: list(v) for k, v in factory.messagebus.events_registry.items()}
    with pytest.raises(Boom), factory.get_breaker("l"):
        raise Boom()
    assert events == [("l", "circuit_breaker_created"), ("l", "failed"), ("l", "state_changed")]
    assert {k: list(v) for k, v in factory.messagebus.events_registry.items()} == before


# -- Redis storage --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as port:
        yield f"redis://127.0.0.1:{port}/0"


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_sync_redis_storage_fails_as_uninstrumented(instrumented: Telemetry, redis_url: str) -> None:
    # purgatory 3.0.1's SyncRedisRepository talks to Redis through redis.asyncio (its sync code is
    # generated from the async code and this call was not converted): every call raises TypeError.
    factory = SyncCircuitBreakerFactory(uow=SyncRedisUnitOfWork(redis_url))
    with pytest.raises(TypeError, match="coroutine"):
        factory.get_breaker("s")
    assert calls(instrumented) == {}


def test_async_redis_calls(instrumented: Telemetry, redis_url: str) -> None:
    async def main() -> None:
        factory = AsyncCircuitBreakerFactory(
            default_threshold=1, default_ttl=60, uow=AsyncRedisUnitOfWork(redis_url)
        )
        await factory.initialize()
        await factory.uow.contexts.redis.flushdb()
        async with await factory.get_breaker("r"):
            pass
        with pytest.raises(Boom):
            async with await factory.get_breaker("r"):
                raise Boom()
        with pytest.raises(OpenedState):
            async with await factory.get_breaker("r"):
                pass

    asyncio.run(main())
    assert calls(instrumented) == {
        ("r", "closed", "success"): 1,
        ("r", "closed", "failure"): 1,
        ("r", "open", "rejected"): 1,
    }


# -- lifecycle and faults -------------------------------------------------------------------------

PATCHED = [
    (Context, "__enter__"),
    (Context, "__exit__"),
    (Context, "set_state"),
    (ClosedState, "handle_exception"),
    (HalfOpenedState, "handle_exception"),
    (OpenedState, "handle_exception"),
]


def test_thousand_cycles_restore_every_original(telemetry: Telemetry) -> None:
    assert_cycles_restore_every_original(PurgatoryInstrumentor, telemetry, PATCHED)


@pytest.mark.faults
@pytest.mark.parametrize("part", ["calls", "duration", "transitions", "tracer", "span_hook", "names"])
def test_faults_never_reach_the_application(
    instrumented: Telemetry, clock: PurgatoryClock, part: str
) -> None:
    break_recorder_part(PurgatoryInstrumentor, part)
    for _ in range(10):
        assert scenario(SyncCircuitBreakerFactory(), clock) == EXPECTED_SEEN
        assert trace.get_current_span() is trace.INVALID_SPAN
