"""What the purgatory patches record: one object per ``instrument()``, closed over by the wrappers.

The sync and async breakers of both factories, with memory or Redis storage, run every call
through one ``purgatory.domain.model.Context``: ``__enter__`` (which raises the ``OpenedState``
itself to reject the call) and ``__exit__``. With memory storage one ``Context`` serves every
concurrent call of a circuit, so a call's own record lives in a context variable, not on the
``Context``: each thread and each asyncio task enters and leaves its own calls.

=====================================  ===============================  ==============================
purgatory event                        patch point -> method            what changes
=====================================  ===============================  ==============================
``Context.__enter__`` starts           ``__enter__`` -> ``start``       span starts
... raises the ``OpenedState``         ``__enter__`` -> ``rejected``    call ends ``rejected``
... returns                            ``__enter__`` -> ``entered``     state known, span current
a state counts the exception           ``<State>.handle_exception``     the call is a failure
``Context.__exit__``                   ``__exit__`` -> ``finish``       call ends: success, failure,
                                                                        or ``ignored`` (excluded)
``Context.set_state``                  ``set_state`` -> ``transition``  transition counted, logged
=====================================  ===============================  ==============================
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from time import perf_counter
from typing import TYPE_CHECKING, Any, Callable

from opentelemetry.metrics import Observation
from opentelemetry.trace import Status, StatusCode
from purgatory.domain.model import CLOSED, HALF_OPENED, OPENED, Context

from otel_resilience._kit.contract_metrics import BreakerMetrics
from otel_resilience._kit.exceptions import error_type, is_cancellation, record_exception
from otel_resilience._kit.faults import contain, report_fault
from otel_resilience._kit.instruments import create_observable
from otel_resilience._kit.names import NameRegistry
from otel_resilience._kit.recording import NO_EXEMPLAR, Recorder, exemplar_context, make_current, restore
from otel_resilience.contract import (
    BREAKER_CONSECUTIVE_FAILURES,
    BREAKER_NAME,
    BREAKER_STATE,
    BREAKER_STATUS,
    BreakerOutcome,
    BreakerState,
)
from otel_resilience.purgatory._info import PurgatoryCallInfo

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from otel_resilience._kit.settings import Settings

STATES: dict[str, str] = {
    CLOSED: BreakerState.CLOSED.value,
    OPENED: BreakerState.OPEN.value,
    HALF_OPENED: BreakerState.HALF_OPEN.value,
}
"""purgatory's state names to the contract's."""
_CLOSED, _OPEN, _HALF_OPEN = (state.value for state in BreakerState)
_SUCCESS, _FAILURE, _REJECTED, _IGNORED = (
    outcome.value
    for outcome in (
        BreakerOutcome.SUCCESS,
        BreakerOutcome.FAILURE,
        BreakerOutcome.REJECTED,
        BreakerOutcome.IGNORED,
    )
)
_REJECTED_ERROR = "purgatory.domain.model.OpenedState"
_COUNTED_FROM_ZERO = (
    (_CLOSED, _SUCCESS, None),
    (_HALF_OPEN, _SUCCESS, None),
    (_OPEN, _REJECTED, _REJECTED_ERROR),
)
_TRANSITIONS_FROM_ZERO = ((_CLOSED, _OPEN), (_OPEN, _HALF_OPEN), (_HALF_OPEN, _CLOSED), (_HALF_OPEN, _OPEN))
_ERROR = Status(StatusCode.ERROR)


class Call:
    """One call through a breaker, from ``Context.__enter__`` to ``Context.__exit__``."""

    __slots__ = ("context", "counted", "name", "outer", "span", "started", "state", "token")

    def __init__(self, context: Context, name: str, span: Span | None) -> None:
        self.context = context
        self.name = name
        self.span = span
        self.state = _CLOSED
        self.started = perf_counter()
        self.token: object | None = None  # the span made current for the block
        self.outer: Call | None = None  # the call this one runs inside, in this context
        self.counted = False  # a state's handle_exception ran: purgatory counted a failure


class PurgatoryTelemetry(Recorder[PurgatoryCallInfo]):
    """Tracer, instruments and the last state seen of each breaker, for one ``instrument()`` call."""

    def __init__(
        self, settings: Settings[PurgatoryCallInfo], scope: str, *, on_open: Callable[[], None]
    ) -> None:
        super().__init__(settings, scope, on_open=on_open)
        self.metrics = BreakerMetrics(self.meter, _REJECTED_ERROR)
        create_observable(self, BREAKER_STATUS, PurgatoryTelemetry.observe_states)
        create_observable(self, BREAKER_CONSECUTIVE_FAILURES, PurgatoryTelemetry.observe_failures)
        self.names = NameRegistry("circuit breaker", settings.max_names, self.metrics.count_from_zero)
        # (state, consecutive failures) of each breaker as this process last saw it: with Redis
        # storage there is no long-lived object to read at collection time, and reading Redis there
        # would make metric collection wait on it.
        self.seen: dict[str, tuple[str, int]] = {}
        self._seen_lock = threading.Lock()

    def _see(self, name: str, context: Context) -> None:
        with self._seen_lock:
            self.seen[name] = (STATES.get(context.state, _CLOSED), context.failure_count or 0)

    # -- calls ----------------------------------------------------------------------------------

    def start(self, context: Context) -> Call | None:
        try:
            name = str(context.name)
            name = self.names.reported.get(name) or self.names.report(name)
            span = self.start_span(name, {BREAKER_NAME: name})
            if span is not None and not span.is_recording():
                span = None
            call = Call(context, name, span)
            if span is not None:  # current from the start: half-opening in __enter__ is an event on it
                call.token = make_current(span)
            return call
        except Exception as fault:
            report_fault("purgatory call telemetry", fault)
            return None

    def rejected(self, call: Call, exc: BaseException) -> None:
        """``__enter__`` raised: the ``OpenedState`` (a rejection), or anything else (a failure)."""
        self._restore(call)
        try:
            state: object = call.context._state
            call.state = _OPEN if exc is state else STATES.get(call.context.state, _CLOSED)
        except Exception as fault:
            report_fault("purgatory call telemetry", fault)
            return
        self._record(call, _REJECTED if call.state == _OPEN else _FAILURE, exc)

    def entered(self, call: Call) -> None:
        """``__enter__`` admitted the call: its state is known (``half_open`` after the TTL)."""
        try:
            call.state = STATES.get(call.context.state, _CLOSED)
            call.outer = current.get()
            current.set(call)
        except Exception as fault:
            report_fault("purgatory call telemetry", fault)

    def leave(self, call: Call) -> None:
        """``__exit__`` judged the call: it is no longer current."""
        try:
            current.set(call.outer)
        except Exception as fault:
            report_fault("purgatory call telemetry", fault)
        self._restore(call)

    @staticmethod
    def _restore(call: Call) -> None:
        token, call.token = call.token, None
        if token is not None:
            try:
                restore(token)
            except Exception as fault:
                report_fault("purgatory call context", fault)

    def finish(self, call: Call, exc: BaseException | None) -> None:
        """``__exit__`` ran: a success, or ``exc`` counted (failure) or excluded (ignored)."""
        if exc is None:
            self._record(call, _SUCCESS, None)
        else:
            self._record(call, _FAILURE if call.counted else _IGNORED, exc)

    def _record(self, call: Call, outcome: str, error: BaseException | None) -> None:
        try:
            elapsed = perf_counter() - call.started
            etype = None if error is None else error_type(error)
            metrics = self.metrics
            attributes = metrics.call_attributes.get(call.name, call.state, outcome, etype)
            metrics.calls.add(1, attributes)
            span = call.span
            metrics.duration.record(
                elapsed, attributes, NO_EXEMPLAR if outcome == _REJECTED else exemplar_context(span)
            )
            self._see(call.name, call.context)
            if span is None:
                return
            span.set_attributes(attributes)
            # A rejection ran nothing: status, outcome and error.type say all there is (and
            # purgatory raises the same OpenedState again for each, its traceback ever longer).
            if error is not None and outcome != _REJECTED:
                record_exception(span, error, messages=self.exception_messages)
            if error is not None and outcome != _IGNORED and not is_cancellation(error):
                span.set_status(_ERROR)
            self.call_hook(
                span, lambda: PurgatoryCallInfo(call.context, call.name, call.state, outcome, error)
            )
            span.end()
        except Exception as fault:
            report_fault("purgatory call telemetry", fault)

    # -- transitions ----------------------------------------------------------------------------

    @contain("purgatory transition telemetry")
    def transition(self, context: Context, previous: str) -> None:
        name = str(context.name)
        name = self.names.reported.get(name) or self.names.report(name)
        state = STATES.get(context.state, _CLOSED)
        previous_state = STATES.get(previous, state)
        self._see(name, context)
        self.metrics.transition(self.tracer, name, state, previous_state)

    # -- observable instruments -----------------------------------------------------------------

    def _snapshot(self) -> list[tuple[str, tuple[str, int]]]:
        with self._seen_lock:
            return list(self.seen.items())

    def observe_states(self) -> list[Observation]:
        return [
            Observation(int(state == seen_state), {BREAKER_NAME: name, BREAKER_STATE: state})
            for name, (seen_state, _) in self._snapshot()
            for state in STATES.values()
        ]

    def observe_failures(self) -> list[Observation]:
        return [Observation(failures, {BREAKER_NAME: name}) for name, (_, failures) in self._snapshot()]


current: ContextVar[Call | None] = ContextVar("otel_resilience_purgatory_call", default=None)
"""The innermost call through a breaker in this thread or task."""


def counted(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
    """A state's ``handle_exception`` ran: purgatory counted the exception as a failure."""
    call = current.get()
    if call is not None:
        call.counted = True
