"""What every breaker instrumentation records, whatever the library: calls, transitions, states.

A breaker library's telemetry subclasses :class:`BreakerRecorder` and tells it, in the contract's
words, what happened: a call began (:meth:`~BreakerRecorder.start_call`, with a
:class:`BreakerCall` of the library's) and ended (:meth:`~BreakerRecorder.record_call`), a breaker
changed state (:meth:`~BreakerRecorder.transition`), and what its breakers are now
(:meth:`~BreakerRecorder.states`, :meth:`~BreakerRecorder.failures`, read at metric collection).
Names, instruments, span ends, state-change events and logs are the same for every library, so
the dashboards and alert rules read them all alike.
"""

from __future__ import annotations

import logging
from time import perf_counter, time_ns
from typing import TYPE_CHECKING, Any, Callable, Final, TypeVar

from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import Observation
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_resilience._kit.diagnostics import Diagnostics
from otel_resilience._kit.exceptions import is_cancellation, record_exception
from otel_resilience._kit.faults import contain, logger, report_fault
from otel_resilience._kit.instruments import create_instrument, create_observable
from otel_resilience._kit.names import AttributeSets, NameRegistry
from otel_resilience._kit.recording import NO_EXEMPLAR, Recorder, exemplar_context, make_current, restore
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
    from collections.abc import Iterable

    from opentelemetry.trace import Span

    from otel_resilience._kit.patching import Observer
    from otel_resilience._kit.settings import Settings

InfoT = TypeVar("InfoT")

CLOSED: Final[str] = BreakerState.CLOSED.value
OPEN: Final[str] = BreakerState.OPEN.value
HALF_OPEN: Final[str] = BreakerState.HALF_OPEN.value
SUCCESS: Final[str] = BreakerOutcome.SUCCESS.value
FAILURE: Final[str] = BreakerOutcome.FAILURE.value
REJECTED: Final[str] = BreakerOutcome.REJECTED.value
IGNORED: Final[str] = BreakerOutcome.IGNORED.value
_TRANSITIONS_FROM_ZERO = ((CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED), (HALF_OPEN, OPEN))
_ERROR = Status(StatusCode.ERROR)  # read-only: one for every span


class BreakerCall:
    """One call through a breaker: its name and state as reported, its start, and its span.

    An open breaker's call most likely is rejected, and then runs nothing a span would parent: its
    span is left for later (``span_start`` holds when the call began). It starts when the outcome is
    known, with all its attributes at once (:meth:`BreakerRecorder.record_call`), or when the
    breaker half-opens: the transition's event goes on it, and the trial runs in it
    (:func:`run_trial`). Rejections come in storms: that makes one cost no more than a success. A
    library's call record subclasses it with what it needs of its own.
    """

    __slots__ = ("context_pending", "name", "span", "span_start", "started", "state", "token")

    def __init__(self, name: str, state: str) -> None:
        self.name = name
        self.state = state
        self.span: Span | None = None
        self.span_start: int | None = None
        # Whether the span, left for later, is still to be made current for the function.
        self.context_pending = False
        # The context token of the span made current for the call, where the library's patches
        # make it current in one place and restore it in another.
        self.token: object | None = None
        self.started = perf_counter()


class BreakerRecorder(Recorder[InfoT]):
    """Instruments, names and diagnostics of one breaker instrumentation.

    ``rejected_error`` is the ``error.type`` of the library's rejections: its rejected series starts
    at 0 with the breaker's other main series.
    """

    def __init__(
        self, settings: Settings[InfoT], scope: str, *, on_open: Callable[[], None], rejected_error: str
    ) -> None:
        super().__init__(settings, scope, on_open=on_open)
        meter = self.meter
        self.calls = create_instrument(meter, BREAKER_CALLS)
        self.duration = create_instrument(meter, BREAKER_CALL_DURATION)
        self.transitions = create_instrument(meter, BREAKER_TRANSITIONS)
        create_observable(self, BREAKER_STATUS, BreakerRecorder.observe_states)
        create_observable(self, BREAKER_CONSECUTIVE_FAILURES, BreakerRecorder.observe_failures)
        self.call_attributes = AttributeSets(BREAKER_NAME, BREAKER_STATE, OUTCOME, ERROR_TYPE)
        self.transition_attributes = AttributeSets(BREAKER_NAME, BREAKER_STATE, BREAKER_PREVIOUS_STATE)
        self.names = NameRegistry("circuit breaker", settings.max_names, self._count_from_zero)
        self.diagnostics = Diagnostics(meter, BREAKER_NAME)
        self._counted_from_zero = (
            (CLOSED, SUCCESS, None),
            (HALF_OPEN, SUCCESS, None),
            (OPEN, REJECTED, rejected_error),
        )

    def _count_from_zero(self, name: str) -> None:
        """A new breaker: its main counters start at 0 (see :class:`NameRegistry`)."""
        for state, outcome, etype in self._counted_from_zero:
            self.calls.add(0, self.call_attributes.get(name, state, outcome, etype))
        for previous, state in _TRANSITIONS_FROM_ZERO:
            self.transitions.add(0, self.transition_attributes.get(name, state, previous))

    def report(self, name: str) -> str:
        """The breaker name as reported (a new one's series are started at 0 first)."""
        return self.names.reported.get(name) or self.names.report(name)

    # -- calls ----------------------------------------------------------------------------------

    def start_call(self, call: BreakerCall, *, defer: bool) -> None:
        """The call begins: its span starts now, or, with ``defer``, later (see :class:`BreakerCall`).

        Defer the span of a call that most likely will be rejected: an open breaker's.
        """
        if self.tracer is None:
            return
        if defer:
            call.span_start = time_ns()
            call.context_pending = True
        else:
            call.span = self._call_span(call, {BREAKER_NAME: call.name, BREAKER_STATE: call.state})

    def begin(self, call: BreakerCall) -> Span | None:
        """The span of ``call``, started now if it was left for later: the function is about to run."""
        if call.span_start is not None:
            call.span = self._call_span(call, {BREAKER_NAME: call.name, BREAKER_STATE: call.state})
        return call.span

    def span_to_enter(self, call: BreakerCall) -> Span | None:
        """The span to make current now that the function of ``call`` runs, if it is not current yet.

        That is a span left for later: a half-open trial, or a state another process changed.
        """
        if not call.context_pending:
            return None
        call.context_pending = False
        return self.begin(call)

    def _call_span(self, call: BreakerCall, attributes: dict[str, Any]) -> Span | None:
        span = self.start_span(call.name, attributes, start_time=call.span_start)
        call.span_start = None
        return span if span is not None and span.is_recording() else None

    def record_call(
        self,
        call: BreakerCall,
        outcome: str,
        error_type: str | None,
        info: Callable[[], InfoT],
        *,
        error: BaseException | None = None,
        span_attributes: dict[str, Any] | None = None,
        elapsed: float | None = None,
        end_time: int | None = None,
    ) -> None:
        """Count and time ``call``, which ended now (or ``elapsed`` seconds after its start, at ``end_time``).

        ``error`` is the exception to put on the span, when there is one to show.
        """
        try:
            attributes = self.call_attributes.get(call.name, call.state, outcome, error_type)
            self.calls.add(1, attributes)
            span = call.span
            started_now = span is None and call.span_start is not None
            if started_now:
                span = call.span = self._call_span(call, attributes)
            self.duration.record(
                perf_counter() - call.started if elapsed is None else elapsed,
                attributes,
                NO_EXEMPLAR if outcome == REJECTED else exemplar_context(span),
            )
            if span is None:
                return
            # A failure's traceback keeps the frames that hold `call` alive until the garbage
            # collector frees the cycle (exception, traceback, frames): not the span too.
            call.span = None
            if not started_now:
                span.set_attributes(attributes)
            if span_attributes:
                span.set_attributes(span_attributes)
            if error is not None and outcome != REJECTED:
                # A rejection ran nothing: status, outcome and error.type say all there is (rejections
                # come in storms, and an exception event would make each cost more than a success).
                record_exception(span, error, messages=self.exception_messages, etype=error_type)
            # An ignored exception is not the call's failure, and a cancellation is the caller's choice.
            if error_type is not None and outcome != IGNORED and not (error and is_cancellation(error)):
                span.set_status(_ERROR)
            self.call_hook(span, info)
            span.end(end_time)
        except Exception as fault:
            report_fault(f"{self.scope} call telemetry", fault)

    # -- transitions ----------------------------------------------------------------------------

    @contain("breaker transition telemetry")
    def transition(
        self,
        name: str,
        previous: str,
        state: str,
        timestamp: int | None = None,
        call: BreakerCall | None = None,
    ) -> None:
        """A breaker changed state: count, log, and an event on the active span (or a span of its own).

        ``timestamp`` (ns since the epoch) is when the change became true, when that was earlier
        than now (a state the library computes only when asked). ``call`` is the call of this
        breaker the change happened in, if any: the event goes on its span (started now if it was
        left for later).
        """
        reported = self.report(name)
        attributes = self.transition_attributes.get(reported, state, previous)
        self.transitions.add(1, attributes)
        level = logging.WARNING if state == OPEN else logging.INFO
        logger.log(level, "circuit breaker %r changed state: %s -> %s", reported, previous, state)
        if self.tracer is None:
            return
        active_span = None if call is None else self.begin(call)
        if active_span is None:
            active_span = trace.get_current_span()
        if active_span.is_recording():
            active_span.add_event(STATE_CHANGE_EVENT, attributes, timestamp=timestamp)
        else:
            span = self.tracer.start_span(
                f"{reported} state change",
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                start_time=timestamp,
            )
            span.add_event(STATE_CHANGE_EVENT, attributes, timestamp=timestamp)
            span.end(timestamp)

    # -- what the breakers are now (metric collection) ------------------------------------------

    def states(self) -> Iterable[tuple[str, str]]:
        """(reported name, state) of every live breaker."""
        raise NotImplementedError

    def failures(self) -> Iterable[tuple[str, int]]:
        """(reported name, consecutive failures) of every live breaker."""
        raise NotImplementedError

    def observe_states(self) -> list[Observation]:
        counts: dict[str, dict[str, int]] = {}
        try:
            for name, state in self.states():
                counts.setdefault(name, dict.fromkeys((CLOSED, OPEN, HALF_OPEN), 0))[state] += 1
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
            for name, count in self.failures():
                failures[name] = max(failures.get(name, 0), count)
        except Exception as fault:
            report_fault("breaker failure observation", fault)
        return [Observation(value, {BREAKER_NAME: name}) for name, value in failures.items()]


def notified_transitions(gate: Callable[[], bool], report: Callable[[Any, Any, Any], None]) -> Observer:
    """The observer of ``_create_new_state(new_state, prev_state=None, notify=False)``.

    pybreaker and its fork aiobreaker make every transition through it: ``report(breaker, previous,
    new)`` runs for those that notify (the others set up a breaker's first state), while something
    records.
    """

    def create_new_state(breaker: Any, args: tuple[Any, ...], kwargs: dict[str, Any], new_state: Any) -> None:
        notify = kwargs.get("notify", args[2] if len(args) > 2 else False)
        if notify and gate() and is_instrumentation_enabled():
            report(breaker, kwargs.get("prev_state", args[1] if len(args) > 1 else None), new_state)

    return create_new_state


def run_trial(
    recorder: BreakerRecorder[Any],
    call: BreakerCall,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run the library's re-entry for ``call``, whose open breaker just half-opened, in the call's span.

    pybreaker and aiobreaker run the trial of an open breaker by calling the breaker again: that
    nested call is the same user call, and its function runs in the span the call left for later.
    """
    span = recorder.span_to_enter(call)
    if span is None:
        return wrapped(*args, **kwargs)
    token = make_current(span)
    try:
        return wrapped(*args, **kwargs)
    finally:
        restore(token)


async def run_trial_async(
    recorder: BreakerRecorder[Any],
    call: BreakerCall,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """:func:`run_trial` for a coroutine function."""
    span = recorder.span_to_enter(call)
    if span is None:
        return await wrapped(*args, **kwargs)
    token = make_current(span)
    try:
        return await wrapped(*args, **kwargs)
    finally:
        restore(token)
