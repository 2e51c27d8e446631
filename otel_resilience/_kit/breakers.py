"""What every breaker instrumentation records, whatever the library: calls, transitions, states.

A breaker library's telemetry subclasses :class:`BreakerRecorder` and tells it, in the contract's
words, what happened: a call ended (:meth:`~BreakerRecorder.record_call`), a breaker changed
state (:meth:`~BreakerRecorder.transition`), and what its breakers are now
(:meth:`~BreakerRecorder.states`, :meth:`~BreakerRecorder.failures`, read at metric collection).
Names, instruments, span ends, state-change events and logs are the same for every library, so
the dashboards and alert rules read them all alike.
"""

from __future__ import annotations

import logging
from time import perf_counter
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
from otel_resilience._kit.recording import NO_EXEMPLAR, Recorder, exemplar_context
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

    def start_call_span(self, name: str, state: str, start_time: int | None = None) -> Span | None:
        """The span of one call, or None when spans are off or not sampled."""
        span = self.start_span(name, {BREAKER_NAME: name, BREAKER_STATE: state}, start_time=start_time)
        if span is not None and not span.is_recording():
            return None
        return span

    def record_call(
        self,
        name: str,
        state: str,
        outcome: str,
        error_type: str | None,
        started: float,
        span: Span | None,
        info: Callable[[], InfoT],
        *,
        error: BaseException | None = None,
        span_attributes: dict[str, Any] | None = None,
    ) -> None:
        """Count and time one call that started at ``started`` (``perf_counter``) and ended now.

        ``error`` is the exception to put on the span, when there is one to show.
        """
        try:
            attributes = self.call_attributes.get(name, state, outcome, error_type)
            self.calls.add(1, attributes)
            self.duration.record(
                perf_counter() - started,
                attributes,
                NO_EXEMPLAR if outcome == REJECTED else exemplar_context(span),
            )
            if span is None:
                return
            span.set_attributes(attributes)
            if span_attributes:
                span.set_attributes(span_attributes)
            if error is not None and outcome != REJECTED:
                # A rejection ran nothing: status, outcome and error.type say all there is (rejections
                # come in storms, and an exception event would make each cost more than a success).
                record_exception(span, error, messages=self.exception_messages)
            # An ignored exception is not the call's failure, and a cancellation is the caller's choice.
            if error_type is not None and outcome != IGNORED and not (error and is_cancellation(error)):
                span.set_status(Status(StatusCode.ERROR))
            self.call_hook(span, info)
            span.end()
        except Exception as fault:
            report_fault(f"{self.scope} call telemetry", fault)

    # -- transitions ----------------------------------------------------------------------------

    @contain("breaker transition telemetry")
    def transition(self, name: str, previous: str, state: str, timestamp: int | None = None) -> None:
        """A breaker changed state: count, log, and an event on the active span (or a span of its own).

        ``timestamp`` (ns since the epoch) is when the change became true, when that was earlier
        than now (a state the library computes only when asked).
        """
        reported = self.report(name)
        attributes = self.transition_attributes.get(reported, state, previous)
        self.transitions.add(1, attributes)
        level = logging.WARNING if state == OPEN else logging.INFO
        logger.log(level, "circuit breaker %r changed state: %s -> %s", reported, previous, state)
        if self.tracer is None:
            return
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
