"""What the pybreaker wrappers record: one object per ``instrument()``, closed over by the wrappers."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import weakref
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from time import perf_counter, time_ns
from typing import TYPE_CHECKING, Any, Callable

import pybreaker
from opentelemetry import context, trace
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from otel_resilience._deferred import defer, run_deferred
from otel_resilience._exceptions import record_exception
from otel_resilience._faults import error_type, logger, report_fault
from otel_resilience._instruments import create_instrument
from otel_resilience._names import NameCap, code_site
from otel_resilience._recorder import Recorder
from otel_resilience.contract import (
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
)

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable

    from otel_resilience._settings import Settings

# pybreaker's state names (`half-open`) as the contract spells them (`half_open`).
STATES = {
    pybreaker.STATE_CLOSED: BreakerState.CLOSED.value,
    pybreaker.STATE_OPEN: BreakerState.OPEN.value,
    pybreaker.STATE_HALF_OPEN: BreakerState.HALF_OPEN.value,
}
_SKIPPED_PACKAGES = ("pybreaker", "wrapt", "otel_resilience", "contextlib")
_REJECTED_ERROR = error_type(pybreaker.CircuitBreakerError())
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


@dataclass(frozen=True)
class BreakerCallInfo:
    """What the ``span_hook`` receives about a finished breaker call."""

    breaker: pybreaker.CircuitBreaker
    name: str
    """The reported breaker name (``resilience.circuit_breaker.name``)."""
    state: str
    """The state the call started in: ``closed``, ``open`` or ``half_open``."""
    outcome: str
    """``success``, ``failure``, ``rejected`` or ``ignored``."""
    error: BaseException | None
    """The function's exception (for a call that tripped the breaker, the original one), or the
    ``CircuitBreakerError`` of a rejected call; None on success."""


class ActiveCall:
    """One user call through a breaker, from the wrapper's entry to the call's real end."""

    __slots__ = ("breaker", "name", "ran", "span", "started", "state", "unstarted")

    def __init__(self, breaker: pybreaker.CircuitBreaker, name: str, state: str, span: Span | None) -> None:
        self.breaker = breaker
        self.name = name
        self.state = state
        self.span = span
        self.ran = False
        self.started = perf_counter()
        self.unstarted: weakref.finalize[Any, Any] | None = None


active_call: ContextVar[ActiveCall | None] = ContextVar("otel_resilience_breaker_call", default=None)


class _Verdicts(threading.local):
    """pybreaker's own classification of recent exceptions, per thread.

    ``is_system_error`` decides whether an exception counts as a failure. Asking it again could
    call user predicates twice, so its answer is kept here, keyed by exception identity, until
    the wrapper that sees the exception leave takes it.
    """

    def __init__(self) -> None:
        self.by_id: dict[int, tuple[BaseException, bool]] = {}

    def put(self, exc: BaseException, counted: bool) -> None:
        by_id = self.by_id
        if len(by_id) >= 32:  # an is_system_error call outside any breaker call: forget the oldest
            del by_id[next(iter(by_id))]
        by_id[id(exc)] = (exc, counted)

    def take(self, exc: BaseException | None) -> tuple[BaseException, bool] | None:
        if exc is None:
            return None
        by_id = self.by_id
        entry = by_id.pop(id(exc), None)
        if entry is not None and entry[0] is exc:
            return entry
        if isinstance(exc, GeneratorExit):
            # Closing our generator closes pybreaker's first, which classifies a GeneratorExit of
            # its own: the newest one is that verdict.
            for key in reversed(list(by_id)):
                if isinstance(by_id[key][0], GeneratorExit):
                    return by_id.pop(key)
        return None


class BreakerTelemetry(Recorder[BreakerCallInfo]):
    """Tracer, instruments and breaker registry of one ``instrument()`` call."""

    def __init__(self, settings: Settings[BreakerCallInfo]) -> None:
        super().__init__(settings, __name__)
        meter = self.meter
        self.calls = create_instrument(meter, BREAKER_CALLS)
        self.duration = create_instrument(meter, BREAKER_CALL_DURATION)
        self.transitions = create_instrument(meter, BREAKER_TRANSITIONS)
        create_instrument(meter, BREAKER_STATUS, [partial(_observe_states, meter)])
        create_instrument(meter, BREAKER_CONSECUTIVE_FAILURES, [partial(_observe_failures, meter)])
        self.verdicts = _Verdicts()
        # Consecutive failures of breakers whose storage is shared (Redis), as this process last set
        # them. Reading the storage at collection time would be a round trip that blocks metric
        # collection for as long as the storage is down.
        self.shared_failures: weakref.WeakKeyDictionary[pybreaker.CircuitBreakerStorage, int] = (
            weakref.WeakKeyDictionary()
        )
        # pybreaker counts failures of `calling()` and generators outside its own lock.
        self._shared_failures_lock = threading.Lock()
        self._cap = NameCap(settings.max_names, "circuit breaker")
        self._attributes: dict[tuple[str, str, str, str | None], dict[str, str]] = {}
        # Every breaker this instrumentation knows, with the name of the code that created it
        # (used when the breaker has no name of its own).
        self._breakers: weakref.WeakKeyDictionary[pybreaker.CircuitBreaker, str] = weakref.WeakKeyDictionary()
        self._registry_lock = threading.Lock()
        self._adopt_existing_breakers()

    # -- names ----------------------------------------------------------------------------------

    def register(self, breaker: pybreaker.CircuitBreaker) -> None:
        """Remember a new breaker and the code that created it."""
        site = code_site(_SKIPPED_PACKAGES)
        with self._registry_lock:
            self._breakers[breaker] = site

    def shared_failure_counted(self, storage: pybreaker.CircuitBreakerStorage, failed: bool) -> None:
        """A shared storage counted one more consecutive failure (``failed``) or reset its count."""
        with self._shared_failures_lock:
            failures = self.shared_failures
            failures[storage] = failures.get(storage, 0) + 1 if failed else 0

    def _adopt_existing_breakers(self) -> None:
        """Find breakers created before ``instrument()``; name unnamed ones after a module global."""
        globals_by_id = {
            id(value): f"{module_name}.{attr}"
            for module_name, module in list(sys.modules.items())
            for attr, value in list(getattr(module, "__dict__", {}).items())
            if isinstance(value, pybreaker.CircuitBreaker)
        }
        for obj in gc.get_objects():
            if isinstance(obj, pybreaker.CircuitBreaker):
                with self._registry_lock:
                    self._breakers[obj] = globals_by_id.get(id(obj), "unknown")

    def name_of(self, breaker: pybreaker.CircuitBreaker) -> str:
        name = breaker.name
        if name is None:
            name = self._breakers.get(breaker)
            if name is None:  # created while this instrumentation was off
                with self._registry_lock:
                    name = self._breakers[breaker] = "unknown"
        return self._cap.known.get(name) or self._first_seen(str(name))

    def _first_seen(self, name: str) -> str:
        """Report a new breaker's main counters at 0 before they first count.

        Prometheus computes rate() and increase() from the samples it has: a series that appears
        with a value already above 0 loses that first count. Series that start at 0 lose nothing.
        """
        reported = self._cap(name)
        try:
            for state, outcome, etype in _COUNTED_FROM_ZERO:
                attributes = {BREAKER_NAME: reported, BREAKER_STATE: state, OUTCOME: outcome}
                if etype is not None:
                    attributes[ERROR_TYPE] = etype
                self.calls.add(0, attributes)
            for previous, state in _TRANSITIONS_FROM_ZERO:
                attributes = {BREAKER_NAME: reported, BREAKER_STATE: state, BREAKER_PREVIOUS_STATE: previous}
                self.transitions.add(0, attributes)
        except Exception as fault:  # the call's span and other metrics still go ahead
            report_fault("pybreaker series initialisation", fault)
        return reported

    # -- calls ----------------------------------------------------------------------------------

    def start(self, breaker: pybreaker.CircuitBreaker) -> ActiveCall:
        name = self.name_of(breaker)
        # The cached state object: reading `breaker.state` could hit Redis and fire a transition.
        state = STATES[breaker._state.name]
        span = None
        if self.tracer is not None:
            try:
                span = self.tracer.start_span(
                    name, kind=SpanKind.INTERNAL, attributes={BREAKER_NAME: name, BREAKER_STATE: state}
                )
            except Exception as fault:  # the call is still counted, without a span
                report_fault("pybreaker span start", fault)
            else:
                if not span.is_recording():
                    span = None
        return ActiveCall(breaker, name, state, span)

    def _known_breakers(self) -> list[pybreaker.CircuitBreaker]:
        # Breakers are registered from any thread while the metric reader's thread observes them.
        with self._registry_lock:
            return list(self._breakers.keys())

    def classify(self, call: ActiveCall, exc: BaseException) -> tuple[str, BaseException]:
        """Outcome of a call that raised ``exc``, and the exception that explains it."""
        verdict = self.verdicts.take(exc) or self.verdicts.take(exc.__context__)
        if verdict is not None:
            original, counted = verdict
            return (BreakerOutcome.FAILURE if counted else BreakerOutcome.IGNORED).value, original
        if isinstance(exc, pybreaker.CircuitBreakerError) and not call.ran:
            call.state = BreakerState.OPEN.value
            return BreakerOutcome.REJECTED.value, exc
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
            key = (call.name, call.state, outcome, etype)
            attributes = self._attributes.get(key)
            if attributes is None:
                attributes = {BREAKER_NAME: call.name, BREAKER_STATE: call.state, OUTCOME: outcome}
                if etype is not None:
                    attributes[ERROR_TYPE] = etype
                self._attributes[key] = attributes
            self.calls.add(1, attributes)
            self.duration.record(elapsed, attributes)
            span = call.span
            if span is not None:
                self._end_span(span, call, outcome, error, attributes, end_time)
        except Exception as fault:
            report_fault("pybreaker call telemetry", fault)

    def _end_span(
        self,
        span: Span,
        call: ActiveCall,
        outcome: str,
        error: BaseException | None,
        attributes: dict[str, str],
        end_time: int | None,
    ) -> None:
        span.set_attributes(attributes)
        if error is not None:
            record_exception(span, error, self.exception_messages)
            if outcome != BreakerOutcome.IGNORED.value:
                span.set_status(Status(StatusCode.ERROR))
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

    def finish_future(self, call: ActiveCall) -> Callable[[Any], None]:
        def done(future: Any) -> None:
            # Not future.exception(): that marks the exception retrieved and would silence
            # asyncio's "exception was never retrieved" report, which is the app's to see.
            exc = asyncio.CancelledError() if future.cancelled() else future._exception
            self.finish(call, exc)

        return done

    # -- transitions ----------------------------------------------------------------------------

    def transition(self, breaker: pybreaker.CircuitBreaker, previous: Any, new: Any) -> None:
        try:
            name = self.name_of(breaker)
            state = STATES[new.name]
            previous_state = STATES[previous.name] if previous is not None else state
            attributes = {BREAKER_NAME: name, BREAKER_STATE: state, BREAKER_PREVIOUS_STATE: previous_state}
            self.transitions.add(1, attributes)
            level = 30 if state == BreakerState.OPEN.value else 20
            logger.log(level, "circuit breaker %r changed state: %s -> %s", name, previous_state, state)
            if self.tracer is None:
                return
            current = trace.get_current_span()
            if current.is_recording():
                current.add_event(STATE_CHANGE_EVENT, attributes)
            else:
                span = self.tracer.start_span(
                    f"{name} state change", kind=SpanKind.INTERNAL, attributes=attributes
                )
                span.add_event(STATE_CHANGE_EVENT, attributes)
                span.end()
        except Exception as fault:
            report_fault("pybreaker transition telemetry", fault)

    # -- observable instruments -----------------------------------------------------------------

    def observe_states(self) -> list[Observation]:
        counts: dict[str, dict[str, int]] = {}
        try:
            for breaker in self._known_breakers():
                per_state = counts.setdefault(self.name_of(breaker), dict.fromkeys(STATES.values(), 0))
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
            for breaker in self._known_breakers():
                storage = breaker._state_storage
                count = (
                    storage.counter
                    if isinstance(storage, pybreaker.CircuitMemoryStorage)
                    else self.shared_failures.get(storage)
                )
                if count is None:  # a shared breaker this process has not counted for yet
                    continue
                name = self.name_of(breaker)
                failures[name] = max(failures.get(name, 0), count)
        except Exception as fault:
            report_fault("breaker failure observation", fault)
        return [Observation(value, {BREAKER_NAME: name}) for name, value in failures.items()]


# A meter keeps the callbacks of its observable instruments for its lifetime, and returns the
# existing instrument when one of the same name is created again. The callbacks therefore read
# whichever telemetry is current if it records to their meter (an SDK meter provider hands out one
# meter per scope): instrument/uninstrument cycles neither leak, nor go stale, nor report to a
# meter provider that is no longer the instrumentation's.
current: list[BreakerTelemetry] = []


def _observe_states(meter: Meter, options: CallbackOptions) -> Iterable[Observation]:
    run_deferred()
    return current[0].observe_states() if current and current[0].meter is meter else ()


def _observe_failures(meter: Meter, options: CallbackOptions) -> Iterable[Observation]:
    return current[0].observe_failures() if current and current[0].meter is meter else ()


def attach(span: Span | None) -> object | None:
    """Make ``span`` current for the guarded function, so the app's spans become its children."""
    return None if span is None else context.attach(trace.set_span_in_context(span))


def detach(token: object | None) -> None:
    if token is not None:
        context.detach(token)  # type: ignore[arg-type]
