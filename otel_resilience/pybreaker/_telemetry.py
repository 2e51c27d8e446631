"""What the pybreaker patches record: one object per ``instrument()``, closed over by the wrappers."""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from contextvars import ContextVar
from functools import partial
from time import perf_counter, time_ns
from typing import TYPE_CHECKING, Any, Callable

import pybreaker
from opentelemetry import trace
from opentelemetry.metrics import Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from otel_resilience._kit.awaitables import follow_awaitable
from otel_resilience._kit.deferred import defer
from otel_resilience._kit.diagnostics import Diagnostics
from otel_resilience._kit.exceptions import error_type, is_cancellation, record_exception
from otel_resilience._kit.faults import contain, logger, report_fault
from otel_resilience._kit.instances import InstanceRegistry
from otel_resilience._kit.instruments import create_instrument, create_observable
from otel_resilience._kit.names import AttributeSets, NameRegistry, function_name
from otel_resilience._kit.recording import NO_EXEMPLAR, Recorder, exemplar_context, make_current, restore
from otel_resilience._kit.verdicts import Verdicts
from otel_resilience.contract import (
    ABANDONED_EVENT,
    BREAKER_CALL_DURATION,
    BREAKER_CALLS,
    BREAKER_CONSECUTIVE_FAILURES,
    BREAKER_NAME,
    BREAKER_PREVIOUS_STATE,
    BREAKER_STATE,
    BREAKER_STATUS,
    BREAKER_TRANSITIONS,
    ERROR_TYPE,
    OUTCOME,
    STATE_CHANGE_EVENT,
    BreakerOutcome,
    BreakerState,
    Finding,
)
from otel_resilience.pybreaker._info import BreakerCallInfo

if TYPE_CHECKING:
    from collections.abc import Generator

    from otel_resilience._kit.settings import Settings

# pybreaker's state names (`half-open`) as the contract spells them (`half_open`).
STATES = {
    pybreaker.STATE_CLOSED: BreakerState.CLOSED.value,
    pybreaker.STATE_OPEN: BreakerState.OPEN.value,
    pybreaker.STATE_HALF_OPEN: BreakerState.HALF_OPEN.value,
}
_SKIPPED_PACKAGES = ("pybreaker", "wrapt", "otel_resilience", "contextlib")
_REJECTED_ERROR = error_type(pybreaker.CircuitBreakerError())
_UNGUARDED = BreakerOutcome.UNGUARDED.value
_REJECTED = BreakerOutcome.REJECTED.value
_ERROR = Status(StatusCode.ERROR)  # read-only: one for every span
_CLOSED, _OPEN, _HALF_OPEN = (
    s.value for s in (BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN)
)
# The series every breaker has sooner or later (failures carry an error.type not known in advance).
_COUNTED_FROM_ZERO = (
    (_CLOSED, BreakerOutcome.SUCCESS.value, None),
    (_HALF_OPEN, BreakerOutcome.SUCCESS.value, None),
    (_OPEN, BreakerOutcome.REJECTED.value, _REJECTED_ERROR),
)
_TRANSITIONS_FROM_ZERO = ((_CLOSED, _OPEN), (_OPEN, _HALF_OPEN), (_HALF_OPEN, _CLOSED), (_HALF_OPEN, _OPEN))


class ActiveCall:
    """One user call through a breaker, from the wrapper's entry to the call's real end."""

    __slots__ = (
        "breaker",
        "context_pending",
        "name",
        "ran",
        "span",
        "span_start",
        "started",
        "state",
        "unstarted",
    )

    def __init__(self, breaker: pybreaker.CircuitBreaker, name: str, state: str) -> None:
        self.breaker = breaker
        self.name = name
        self.state = state
        self.span: Span | None = None
        # When the span is still to be started (time_ns of the call's start), else None.
        self.span_start: int | None = None
        # Whether the span is still to be made current, when the function runs.
        self.context_pending = False
        self.ran = False
        self.started = perf_counter()
        self.unstarted: weakref.finalize[Any, Any] | None = None


active_call: ContextVar[ActiveCall | None] = ContextVar("otel_resilience_breaker_call", default=None)


class BreakerTelemetry(Recorder[BreakerCallInfo]):
    """Tracer, instruments and breaker registry of one ``instrument()`` call."""

    def __init__(
        self, settings: Settings[BreakerCallInfo], scope: str, *, on_open: Callable[[], None]
    ) -> None:
        super().__init__(settings, scope, on_open=on_open)
        meter = self.meter
        self.calls = create_instrument(meter, BREAKER_CALLS)
        self.duration = create_instrument(meter, BREAKER_CALL_DURATION)
        self.transitions = create_instrument(meter, BREAKER_TRANSITIONS)
        create_observable(self, BREAKER_STATUS, BreakerTelemetry.observe_states)
        create_observable(self, BREAKER_CONSECUTIVE_FAILURES, BreakerTelemetry.observe_failures)
        self.verdicts = Verdicts()
        # Consecutive failures of breakers whose storage is shared (Redis), as this process last set
        # them. Reading the storage at collection time would be a round trip that blocks metric
        # collection for as long as the storage is down.
        self.shared_failures: weakref.WeakKeyDictionary[pybreaker.CircuitBreakerStorage, int] = (
            weakref.WeakKeyDictionary()
        )
        # pybreaker counts failures of `calling()` and generators outside its own lock.
        self._shared_failures_lock = threading.Lock()
        self.call_attributes = AttributeSets(BREAKER_NAME, BREAKER_STATE, OUTCOME, ERROR_TYPE)
        self.transition_attributes = AttributeSets(BREAKER_NAME, BREAKER_STATE, BREAKER_PREVIOUS_STATE)
        self.names = NameRegistry("circuit breaker", settings.max_names, self._count_from_zero)
        self.diagnostics = Diagnostics(meter, BREAKER_NAME)
        # Where each breaker was created: the name of a breaker without a name of its own.
        self.breakers = InstanceRegistry(pybreaker.CircuitBreaker, _SKIPPED_PACKAGES)
        self.breakers.adopt_existing()

    # -- names ----------------------------------------------------------------------------------

    def shared_failure_counted(self, storage: pybreaker.CircuitBreakerStorage, *, failed: bool) -> None:
        """A shared storage counted one more consecutive failure (``failed``) or reset its count."""
        with self._shared_failures_lock:
            failures = self.shared_failures
            failures[storage] = failures.get(storage, 0) + 1 if failed else 0

    def report_name(self, breaker: pybreaker.CircuitBreaker) -> str:
        """The breaker's name as reported (a new one's series are started at 0 first)."""
        name = breaker.name
        if name is None:
            name = self.breakers.site(breaker)
        return self.names.reported.get(name) or self.names.report(str(name))

    def _count_from_zero(self, name: str) -> None:
        """A new breaker: its main counters start at 0 (see :class:`NameRegistry`)."""
        for state, outcome, etype in _COUNTED_FROM_ZERO:
            self.calls.add(0, self.call_attributes.get(name, state, outcome, etype))
        for previous, state in _TRANSITIONS_FROM_ZERO:
            self.transitions.add(0, self.transition_attributes.get(name, state, previous))

    # -- calls ----------------------------------------------------------------------------------

    def start(self, breaker: pybreaker.CircuitBreaker) -> ActiveCall:
        name = self.report_name(breaker)
        # The cached state object: reading `breaker.state` could hit Redis and fire a transition.
        state = STATES[breaker._state.name]
        call = ActiveCall(breaker, name, state)
        if self.tracer is None:
            return call
        if state == _OPEN:
            # An open breaker most likely rejects, and then runs nothing its span would parent: the
            # span starts when the outcome is known, with all its attributes at once (`record`), or
            # when the breaker half-opens and runs the function (`begin`).
            call.span_start = time_ns()
            call.context_pending = True
        else:
            call.span = self._call_span(call, {BREAKER_NAME: name, BREAKER_STATE: state})
        return call

    def begin(self, call: ActiveCall) -> Span | None:
        """The span of ``call``, started now if it was left for later: its function is about to run."""
        if call.span_start is not None:
            call.span = self._call_span(call, {BREAKER_NAME: call.name, BREAKER_STATE: call.state})
        return call.span

    def _call_span(self, call: ActiveCall, attributes: dict[str, str]) -> Span | None:
        span = self.start_span(call.name, attributes, start_time=call.span_start)
        call.span_start = None
        return span if span is not None and span.is_recording() else None

    def classify(self, call: ActiveCall, exc: BaseException) -> tuple[str, BaseException]:
        """Outcome of a call that raised ``exc``, and the exception that explains it."""
        verdict = self.verdicts.take(exc) or self.verdicts.take(exc.__context__)
        if verdict is not None:
            original, counted = verdict
            return (BreakerOutcome.FAILURE if counted else BreakerOutcome.IGNORED).value, original
        if isinstance(exc, pybreaker.CircuitBreakerError) and not call.ran:
            call.state = _OPEN
            return _REJECTED, exc
        # Raised before pybreaker classified it (a listener, or storage): not the breaker's count.
        return BreakerOutcome.FAILURE.value, exc

    def finish(self, call: ActiveCall, exc: BaseException | None) -> None:
        """Record a call that ended just now, with ``exc`` or without."""
        try:
            outcome, error = self.outcome_of(call, exc)
        except Exception as fault:
            report_fault("pybreaker call telemetry", fault)
            return
        self.record(call, outcome, error, perf_counter() - call.started)

    def outcome_of(self, call: ActiveCall, exc: BaseException | None) -> tuple[str, BaseException | None]:
        return (BreakerOutcome.SUCCESS.value, None) if exc is None else self.classify(call, exc)

    def record(
        self,
        call: ActiveCall,
        outcome: str,
        error: BaseException | None,
        elapsed: float,
        end_time: int | None = None,
    ) -> None:
        try:
            etype = None if error is None else error_type(error)
            attributes = self.call_attributes.get(call.name, call.state, outcome, etype)
            self.calls.add(1, attributes)
            span = call.span
            started_now = span is None and call.span_start is not None
            if started_now:
                span = call.span = self._call_span(call, attributes)
            self.duration.record(
                elapsed, attributes, NO_EXEMPLAR if outcome == _REJECTED else exemplar_context(span)
            )
            if span is not None:
                # A failure's traceback keeps the frames that hold `call` alive until the garbage
                # collector frees the cycle (exception, traceback, frame): not the span too.
                call.span = None
                self._end_span(span, call, outcome, error, None if started_now else attributes, end_time)
        except Exception as fault:
            report_fault("pybreaker call telemetry", fault)

    def _end_span(
        self,
        span: Span,
        call: ActiveCall,
        outcome: str,
        error: BaseException | None,
        attributes: dict[str, str] | None,
        end_time: int | None,
    ) -> None:
        """End ``span``, setting ``attributes`` first (None: it started with them)."""
        if attributes is not None:
            span.set_attributes(attributes)
        if outcome == _REJECTED:
            # Nothing ran: status, outcome and error.type say all there is (rejections come in
            # storms, and an exception event would make each cost more than a success).
            span.set_status(_ERROR)
        elif error is not None:
            record_exception(span, error, messages=self.exception_messages)
            # An excluded exception is not the call's failure, and a cancellation is the caller's choice.
            if outcome != BreakerOutcome.IGNORED.value and not is_cancellation(error):
                span.set_status(_ERROR)
        self.call_hook(span, lambda: BreakerCallInfo(call.breaker, call.name, call.state, outcome, error))
        span.end(end_time)

    def follow(self, generator: Generator[Any, Any, Any], call: ActiveCall) -> Generator[Any, Any, Any]:
        """Finish ``call`` when pybreaker's guarded generator really ends, not when ``call`` returned it."""
        followed = self._follow(generator, call)
        # A generator dropped before its first step runs none of its code, not even `finally`.
        call.unstarted = weakref.finalize(followed, defer, partial(self._end_unstarted, call))
        return followed

    def _end_unstarted(self, call: ActiveCall) -> None:
        """The function never ran and pybreaker counted nothing: end the span, count nothing."""
        if call.span is not None:
            call.span.end()

    def _follow(self, generator: Generator[Any, Any, Any], call: ActiveCall) -> Generator[Any, Any, Any]:
        if call.unstarted is not None:
            call.unstarted.detach()
        try:
            result = yield from generator
        except GeneratorExit as exc:
            # Possibly closed by the garbage collector: classify now, while pybreaker's verdict is
            # fresh, and record from a safe place later.
            try:
                outcome, error = self.outcome_of(call, exc)
                defer(partial(self.record, call, outcome, error, perf_counter() - call.started, time_ns()))
            except Exception as fault:
                report_fault("pybreaker generator telemetry", fault)
            raise
        except BaseException as exc:
            self.finish(call, exc)
            raise
        self.finish(call, None)
        return result

    # -- calls that returned an awaitable (an `async def` behind a breaker) -----------------------

    def follow_awaitable(self, awaitable: Any, call: ActiveCall, function: Any) -> Any:
        """Follow the awaitable a call returned to its end: pybreaker saw none of it.

        pybreaker counted the call as a success when the coroutine was created, before its body ran
        (it has no asyncio support). The caller gets a proxy that behaves as the awaitable (a
        coroutine stays a coroutine for ``asyncio``, ``anyio`` and ``trio``); while it is awaited the
        call's span is current, and when it ends the call is recorded as ``unguarded``, with what
        the body raised. Dropped without being awaited, it ends its span as abandoned and Python
        still warns that the user's coroutine was never awaited.
        """
        self.diagnostics.found(Finding.BREAKER_BLIND_TO_ASYNC, call.name, function_name(function))
        abandoned = partial(defer, partial(self._end_abandoned, call))
        return follow_awaitable(awaitable, partial(self._follow_await, call), abandoned)

    def _follow_await(self, call: ActiveCall, awaitable: Any) -> Generator[Any, Any, Any]:
        token = None if call.span is None else make_current(call.span)
        try:
            result = yield from awaitable.__await__()
        except GeneratorExit:
            # Closed part-way, perhaps by the garbage collector: no span or context work here.
            defer(partial(self._end_abandoned, call, time_ns()))
            raise
        except BaseException as exc:
            if token is not None:
                restore(token)
            self.record(call, _UNGUARDED, exc, perf_counter() - call.started)
            raise
        if token is not None:
            restore(token)
        self.record(call, _UNGUARDED, None, perf_counter() - call.started)
        return result

    def _end_abandoned(self, call: ActiveCall, end_time: int | None = None) -> None:
        """The awaitable was dropped or closed before it finished: the body did not run to its end."""
        if call.span is not None:
            call.span.add_event(ABANDONED_EVENT, timestamp=end_time)
        self.record(call, _UNGUARDED, None, perf_counter() - call.started, end_time)

    def finish_future(self, call: ActiveCall) -> Callable[[Any], None]:
        def done(future: Any) -> None:
            # Not future.exception(): that marks the exception retrieved and would silence
            # asyncio's "exception was never retrieved" report, which is the app's to see.
            exc = asyncio.CancelledError() if future.cancelled() else future._exception
            self.finish(call, exc)

        return done

    # -- transitions ----------------------------------------------------------------------------

    @contain("pybreaker transition telemetry")
    def transition(self, breaker: pybreaker.CircuitBreaker, previous: Any, new: Any) -> None:
        name = self.report_name(breaker)
        state = STATES[new.name]
        previous_state = STATES[previous.name] if previous is not None else state
        attributes = self.transition_attributes.get(name, state, previous_state)
        self.transitions.add(1, attributes)
        level = logging.WARNING if state == BreakerState.OPEN.value else logging.INFO
        logger.log(level, "circuit breaker %r changed state: %s -> %s", name, previous_state, state)
        if self.tracer is None:
            return
        call = active_call.get()
        # The span of the call the change happened in (an open breaker's call starts it now).
        active_span = self.begin(call) if call is not None and call.breaker is breaker else None
        if active_span is None:
            active_span = trace.get_current_span()
        if active_span.is_recording():
            active_span.add_event(STATE_CHANGE_EVENT, attributes)
        else:
            span = self.tracer.start_span(
                f"{name} state change", kind=SpanKind.INTERNAL, attributes=attributes
            )
            span.add_event(STATE_CHANGE_EVENT, attributes)
            span.end()

    # -- observable instruments -----------------------------------------------------------------

    def observe_states(self) -> list[Observation]:
        counts: dict[str, dict[str, int]] = {}
        try:
            for breaker in self.breakers.snapshot():
                per_state = counts.setdefault(self.report_name(breaker), dict.fromkeys(STATES.values(), 0))
                per_state[STATES[breaker._state.name]] += 1
        except Exception as fault:
            report_fault("breaker state observation", fault)
        return [
            Observation(value, {BREAKER_NAME: name, BREAKER_STATE: state})
            for name, per_state in counts.items()
            for state, value in per_state.items()
        ]

    def observe_failures(self) -> list[Observation]:
        failures: dict[str, int] = {}
        try:
            for breaker in self.breakers.snapshot():
                storage = breaker._state_storage
                count = (
                    storage.counter
                    if isinstance(storage, pybreaker.CircuitMemoryStorage)
                    else self.shared_failures.get(storage)
                )
                if count is None:  # a shared breaker this process has not counted for yet
                    continue
                name = self.report_name(breaker)
                failures[name] = max(failures.get(name, 0), count)
        except Exception as fault:
            report_fault("breaker failure observation", fault)
        return [Observation(value, {BREAKER_NAME: name}) for name, value in failures.items()]
