"""What the tenacity patches record: one object per ``instrument()``, closed over by the wrappers.

Each retried operation has one tenacity ``RetryCallState`` (decorated functions copy their
``Retrying`` on every call, but make one state per call), so an :class:`Operation` is found by
the state's ``id()``, which a weak reference to the state keeps unambiguous. Nothing is stored on
tenacity's objects: they stay picklable and their ``__dict__`` stays the application's. An
``Operation`` holds no strong reference to the state, the retried function, its arguments or its
exceptions (whose tracebacks lead back to the state), so a loop the application leaves early frees
the state, and the weak reference's callback says so. That callback may run inside the garbage
collector, and so may a generator closed inside ``with attempt:``: there nothing is done but
queueing; the queue runs when the next operation starts.

An operation's lifecycle, as tenacity drives it (``Phase``; ``_MOVES`` lists the allowed moves, and a
move outside it is reported as a fault of ours):

=====================================  ==============================  ===================================
tenacity event                         patch point -> method           what changes
=====================================  ==============================  ===================================
first ``iter`` of a new state          ``iter`` -> ``start``           operation span starts; STARTED
``iter`` returns ``DoAttempt``         ``iter`` -> ``decided``         attempt span starts; ATTEMPTING
``set_result`` / ``set_exception``     ``set_*`` -> ``attempt_ended``  attempt's end and error kept; RAN
... with a ``GeneratorExit``           ``set_exception``               nothing more from here; CLOSING
``iter`` returns ``DoSleep``           ``iter`` -> ``decided``         attempt ends failed, backoff
                                                                       recorded; BACKING_OFF
``iter`` returns a value               ``iter`` -> ``decided``         attempt ends (JUDGED), then the
                                                                       operation; ENDED
``iter`` raises                        ``iter`` -> ``raised``          attempt (if open: JUDGED) and
                                                                       operation end, failed; ENDED
``with attempt:`` entered / left       ``AttemptManager`` enter/exit   attempt span current in the block
state freed before a final ``iter``    weak reference -> deferred      open attempt and operation end
(``return``/``break``, closed)         ``_abandoned``                  at the last progress; ENDED
=====================================  ==============================  ===================================
"""

from __future__ import annotations

import inspect
import weakref
from concurrent.futures._base import FINISHED
from contextvars import ContextVar
from enum import IntEnum
from functools import partial
from time import perf_counter, time_ns
from typing import TYPE_CHECKING, Any, Callable

import tenacity
from opentelemetry import context, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Span, Status, StatusCode

from otel_resilience._kit import diagnostics
from otel_resilience._kit.deferred import defer, pending, run_deferred
from otel_resilience._kit.diagnostics import Diagnostics
from otel_resilience._kit.exceptions import error_type, record_exception
from otel_resilience._kit.faults import report_fault
from otel_resilience._kit.instruments import create_instrument
from otel_resilience._kit.names import AttributeSets, NameRegistry, code_site, function_name
from otel_resilience._kit.recording import Recorder, exemplar_context, make_current, restore
from otel_resilience.contract import (
    BACKOFF_EVENT,
    ERROR_TYPE,
    OUTCOME,
    REJECTED_RESULT,
    RETRY_ATTEMPT,
    RETRY_ATTEMPT_DURATION,
    RETRY_ATTEMPTS,
    RETRY_ATTEMPTS_METRIC,
    RETRY_BACKOFF,
    RETRY_BACKOFF_DURATION,
    RETRY_CALL_ATTEMPTS,
    RETRY_CALL_DURATION,
    RETRY_CALLS,
    RETRY_NAME,
    AttemptOutcome,
    Finding,
    RetryOutcome,
)
from otel_resilience.tenacity._info import RetryCallInfo

if TYPE_CHECKING:
    from types import FrameType

    from opentelemetry.context import Context

    from otel_resilience._kit.settings import Settings

_SKIPPED_PACKAGES = ("tenacity", "stamina", "wrapt", "otel_resilience", "contextlib")
_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR
_DELEGATING_NAMES = frozenset({"__enter__", "__aenter__", "enter_context", "enter_async_context"})
_DELEGATING_MODULES = ("wrapt", "contextlib")
_ERROR = Status(StatusCode.ERROR)  # read-only: one for every span
_STOP_NEVER = tenacity.stop_never  # the one instance: tenacity's default and what users pass
_SUCCESS = AttemptOutcome.SUCCESS.value
_FAILURE = AttemptOutcome.FAILURE.value
_OUTCOMES = {
    (False, False): RetryOutcome.SUCCESS_WITHOUT_RETRY.value,
    (False, True): RetryOutcome.SUCCESS_WITH_RETRY.value,
    (True, False): RetryOutcome.FAILED_WITHOUT_RETRY.value,
    (True, True): RetryOutcome.FAILED_WITH_RETRY.value,
}


class Phase(IntEnum):
    """Where a retried operation is in its lifecycle (the table at the top of this module).

    One bit each, so that the checks made on every attempt are integer operations.
    """

    STARTED = 1
    ATTEMPTING = 2
    RAN = 4
    """The attempt ran (``set_result``/``set_exception``); ``iter`` has not judged it yet, or never will."""
    CLOSING = 8
    """A generator or coroutine was closed inside the attempt, perhaps by the garbage collector."""
    BACKING_OFF = 16
    JUDGED = 32
    """The last attempt ended without a backoff: the operation ends next."""
    ENDED = 64


_MOVES: dict[Phase, frozenset[Phase]] = {
    Phase.STARTED: frozenset({Phase.ATTEMPTING, Phase.ENDED}),
    Phase.ATTEMPTING: frozenset({Phase.RAN, Phase.CLOSING, Phase.JUDGED}),
    # retry_if_result in a for-attempt loop: set_result runs twice for one attempt.
    Phase.RAN: frozenset({Phase.RAN, Phase.BACKING_OFF, Phase.JUDGED}),
    Phase.CLOSING: frozenset({Phase.JUDGED}),
    Phase.BACKING_OFF: frozenset({Phase.ATTEMPTING, Phase.ENDED}),
    Phase.JUDGED: frozenset({Phase.ENDED}),
    Phase.ENDED: frozenset(),
}
"""The allowed moves from each phase."""
_ALLOWED = {phase: sum(targets) for phase, targets in _MOVES.items()}  # as bits
_STARTED, _ATTEMPTING, _RAN, _CLOSING, _BACKING_OFF, _JUDGED, _ENDED = Phase
_ATTEMPT_OPEN = _ATTEMPTING | _RAN | _CLOSING


class LifecycleError(Exception):
    """A move the lifecycle table does not allow: a fault of ours, reported, never raised."""


class StateRef(weakref.ref[tenacity.RetryCallState]):
    """A weak reference to a tenacity state that knows the state's key in ``operations``."""

    __slots__ = ("key",)
    key: int


class Operation:
    """One retried operation, from its first ``iter`` to its end."""

    __slots__ = (
        "attempt",
        "attempt_ended",
        "attempt_error",
        "attempt_error_class",
        "attempt_span",
        "attempt_span_name",
        "attempt_started",
        "last_error",
        "last_seen",
        "name",
        "parent",
        "phase",
        "ref",
        "span",
        "started",
        "token",
        "wall_started",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.phase = _STARTED
        self.span: Span | None = None
        self.attempt_span_name = ""
        self.parent: Context | None = None  # the context of attempt spans: the operation span's
        # The last time tenacity reported progress: where a loop left early ends.
        self.started = self.last_seen = perf_counter()
        self.wall_started = time_ns()
        self.attempt = 0
        self.attempt_span: Span | None = None
        self.attempt_started = self.started
        self.attempt_ended: float | None = None
        # error.type of the exception that ended the current attempt, kept for a loop left early,
        # when tenacity's state (and the exception) is gone.
        self.attempt_error: str | None = None
        self.attempt_error_class: type[BaseException] | None = None  # to reuse attempt_error
        self.last_error: str | None = None  # error.type of the last finished attempt, None if it succeeded
        self.token: object | None = None  # the call forms' current attempt span, until the attempt ends
        self.ref: StateRef | None = None

    def wall(self, instant: float) -> int:
        """Span timestamp of a ``perf_counter()`` reading: one clock for all of the operation's spans."""
        return self.wall_started + int((instant - self.started) * 1e9)

    def current_span(self) -> Span | None:
        """The span an attempt runs in: its own, or the operation's when it has none.

        An attempt of a sampled-out operation starts no span of its own (``Recorder.start_span``);
        the operation's keeps what the attempt runs in that operation's sampled-out trace.
        """
        return self.attempt_span if self.attempt_span is not None else self.span

    def move(self, phase: Phase) -> None:
        """Enter ``phase``; a move the lifecycle table does not allow is reported as our fault."""
        if not _ALLOWED[self.phase] & phase:
            report_fault("tenacity operation lifecycle", LifecycleError(f"{self.phase.name} -> {phase.name}"))
        self.phase = phase


_entered: ContextVar[tuple[object, object, Any] | None] = ContextVar(
    "otel_resilience_retry_attempt", default=None
)
"""The ``with attempt:`` blocks that made an attempt span current in this context, innermost first:
(attempt manager, context token, enclosing entry)."""


def _in_generator(caller: FrameType) -> bool:
    """Whether the ``with attempt:`` block is in a generator or an async generator.

    A ``yield`` inside the block would carry a current span into the consumer's code, and the
    block's exit may run from the garbage collector: there the attempt span is not made current.
    """
    frame: FrameType | None = caller
    while frame is not None and (
        frame.f_code.co_name in _DELEGATING_NAMES
        or frame.f_globals.get("__name__", "").startswith(_DELEGATING_MODULES)
    ):
        frame = frame.f_back  # stamina's Attempt.__enter__, ExitStack.enter_context...
    return frame is not None and bool(frame.f_code.co_flags & _GENERATOR_FLAGS)


def _outcome_error(retry_state: tenacity.RetryCallState | None) -> BaseException | None:
    future = None if retry_state is None else retry_state.outcome
    if future is None:
        return None
    if future._state == FINISHED:
        # A finished future never changes again: read it without the lock exception() takes,
        # which costs more than the rest of judging an attempt.
        return future._exception
    # timeout=0: a future that is not finished raises at once instead of blocking the application.
    return future.exception(timeout=0)


def _retried(retrying: tenacity.BaseRetrying) -> bool:
    """Whether the ``iter`` that just returned decided to retry (and then stopped, or slept)."""
    state = getattr(retrying, "iter_state", None)  # tenacity < 8.3 keeps no verdict to read
    return state is not None and bool(state.retry_run_result or state.is_explicit_retry)


def _stamina_name(retrying: tenacity.BaseRetrying) -> str | None:
    """The name stamina gave the function its ``@stamina.retry`` runs in a for-attempt loop.

    stamina passes a method of its attempt iterator as ``before``; that iterator holds the
    decorated function's ``module.qualname`` (``retry_context()`` blocks hold ``<context block>``).
    """
    owner = getattr(retrying.before, "__self__", None)
    name = getattr(owner, "_name", None)
    if type(owner).__module__.startswith("stamina.") and isinstance(name, str) and not name.startswith("<"):
        return name
    return None


class RetryTelemetry(Recorder[RetryCallInfo]):
    """Tracer, instruments and operations in progress of one ``instrument()`` call."""

    def __init__(self, settings: Settings[RetryCallInfo], scope: str, *, on_open: Callable[[], None]) -> None:
        super().__init__(settings, scope, on_open=on_open)
        meter = self.meter
        self.calls = create_instrument(meter, RETRY_CALLS)
        self.attempts = create_instrument(meter, RETRY_ATTEMPTS_METRIC)
        self.attempt_duration = create_instrument(meter, RETRY_ATTEMPT_DURATION)
        self.call_duration = create_instrument(meter, RETRY_CALL_DURATION)
        self.call_attempts = create_instrument(meter, RETRY_CALL_ATTEMPTS)
        self.backoff = create_instrument(meter, RETRY_BACKOFF_DURATION)
        self.result_attributes = AttributeSets(RETRY_NAME, OUTCOME, ERROR_TYPE)
        self.names = NameRegistry("retry", settings.max_names, self._count_from_zero)
        self.diagnostics = Diagnostics(meter, RETRY_NAME)
        self._on_release = self._released  # one bound method for all weak references
        self.operations: dict[int, Operation] = {}
        """In progress, by ``id()`` of their state. An entry goes when its operation ends or when its
        state is freed (the weak reference's callback runs before the memory can hold another
        object), so no key ever names two states: finding needs no weak reference."""

    # -- finding and starting operations --------------------------------------------------------

    def find(self, retry_state: tenacity.RetryCallState) -> Operation | None:
        return self.operations.get(id(retry_state))

    def start(self, retrying: tenacity.BaseRetrying, retry_state: Any) -> Operation | None:
        """The operation ``iter`` is deciding for, new at its first call; None to record nothing.

        The wrapper calls it only once :attr:`live` said something can record.
        """
        if not isinstance(retry_state, tenacity.RetryCallState):
            return None
        try:
            operation = self.operations.get(id(retry_state))
            if operation is not None:
                # Closing: tenacity winds down a closed generator, maybe inside the collector.
                return None if operation.phase is _CLOSING else operation
            # Past its first attempt, a state belongs to an operation that started while this
            # instrumentation was off, or that has ended (tasks sharing an AsyncRetrying's loop can
            # drive an ended state on, and so can a generator the collector closes).
            if retry_state.attempt_number != 1 or retry_state.outcome is not None:
                return None
            # An empty context suppresses nothing: the common case skips the two look-ups.
            if context.get_current() and not is_instrumentation_enabled():
                return None
            if pending:  # queued by the collector: a new operation starts in the app's own code
                run_deferred()
            return self._begin(retrying, retry_state)
        except Exception as fault:
            report_fault("tenacity operation telemetry", fault)
            return None

    def _begin(self, retrying: tenacity.BaseRetrying, retry_state: tenacity.RetryCallState) -> Operation:
        name = self._name(retrying, retry_state)
        operation = Operation(self.names.reported.get(name) or self.names.report(name))
        span = self.start_span(
            operation.name, {RETRY_NAME: operation.name}, start_time=operation.wall_started
        )
        if span is not None:  # else no spans, and the operation is still counted
            operation.span = span
            operation.parent = trace.set_span_in_context(span)
            operation.attempt_span_name = f"{operation.name} attempt"
        operation.ref = StateRef(retry_state, self._on_release)
        operation.ref.key = id(retry_state)
        self.operations[operation.ref.key] = operation
        if retrying.stop is _STOP_NEVER:  # tenacity's default: retry forever
            self.diagnostics.found(Finding.RETRY_UNBOUNDED, operation.name, "stop=stop_never")
        return operation

    def _count_from_zero(self, name: str) -> None:
        """A new operation: its success counters start at 0 (see :class:`NameRegistry`).

        Failures carry an ``error.type`` not known in advance.
        """
        for outcome in (RetryOutcome.SUCCESS_WITHOUT_RETRY, RetryOutcome.SUCCESS_WITH_RETRY):
            self.calls.add(0, self.result_attributes.get(name, outcome.value))
        self.attempts.add(0, self.result_attributes.get(name, AttemptOutcome.SUCCESS.value))

    @staticmethod
    def _name(retrying: tenacity.BaseRetrying, retry_state: tenacity.RetryCallState) -> str:
        name = getattr(retrying, "_name", None)  # tenacity's name= (9.2+)
        if isinstance(name, str) and name:
            return name
        if retry_state.fn is not None:
            return function_name(retry_state.fn)
        return _stamina_name(retrying) or code_site(_SKIPPED_PACKAGES)

    # -- what iter decided ----------------------------------------------------------------------

    def decided(
        self,
        operation: Operation,
        retrying: tenacity.BaseRetrying,
        retry_state: tenacity.RetryCallState,
        action: Any,
    ) -> None:
        try:
            if isinstance(action, tenacity.DoAttempt):
                self._start_attempt(operation, retry_state)
            elif isinstance(action, tenacity.DoSleep):
                error = _outcome_error(retry_state)
                self._end_attempt(operation, retry_state, error, failed=True, backoff=float(action))
                if isinstance(error, diagnostics.rejection_errors):
                    self.diagnostics.found(Finding.RETRY_ON_REJECTION, operation.name, error_type(error))
            else:  # the result, or what retry_error_callback returned after the stop
                error = _outcome_error(retry_state)
                failed = error is not None or _retried(retrying)
                self._end_attempt(operation, retry_state, error, failed=failed)
                self._finish(operation, retry_state, operation.last_error, None, failed=failed)
        except Exception as fault:
            report_fault("tenacity attempt telemetry", fault)

    def raised(
        self,
        operation: Operation,
        retrying: tenacity.BaseRetrying,
        retry_state: tenacity.RetryCallState,
        exc: BaseException,
    ) -> None:
        try:
            error = _outcome_error(retry_state)
            gave_up = isinstance(exc, tenacity.RetryError)  # only ever after a verdict "retry"
            if operation.phase & _ATTEMPT_OPEN:
                failed = error is not None or gave_up or _retried(retrying)
                self._end_attempt(operation, retry_state, error, failed=failed)
            if gave_up and operation.last_error is not None:
                # A RetryError says only that tenacity gave up: the last attempt's error says why.
                etype = operation.last_error
            else:
                etype = error_type(exc)
                span = operation.span
                # Recording costs a formatted traceback: once per exception, on the attempt if it has it.
                if exc is not error and span is not None and span.is_recording():
                    record_exception(
                        span, exc, messages=self.exception_messages, timestamp=operation.wall(perf_counter())
                    )
            self._finish(operation, retry_state, etype, exc, failed=True)
        except Exception as fault:
            report_fault("tenacity operation telemetry", fault)

    # -- attempts -------------------------------------------------------------------------------

    def _start_attempt(self, operation: Operation, retry_state: tenacity.RetryCallState) -> None:
        number = retry_state.attempt_number
        if operation.phase & _ATTEMPT_OPEN and operation.attempt == number:
            return  # tasks iterating one AsyncRetrying share its state: one attempt, run twice
        operation.attempt = number
        operation.move(_ATTEMPTING)
        operation.attempt_started = operation.last_seen = perf_counter()
        operation.attempt_ended = operation.attempt_error = operation.attempt_error_class = None
        if operation.span is None:  # metrics only, or the operation span could not start
            return
        span = self.start_span(
            operation.attempt_span_name,
            {RETRY_NAME: operation.name, RETRY_ATTEMPT: number},
            parent=operation.parent,
            start_time=operation.wall(operation.attempt_started),
        )
        operation.attempt_span = span
        current = operation.current_span()
        if current is not None and retry_state.fn is not None:
            # Call forms run the attempt in tenacity's own frame, right after this returns, and end
            # it with set_result/set_exception in that frame: the same context is current there.
            operation.token = make_current(current)

    def attempt_ended(self, retry_state: tenacity.RetryCallState, exc: BaseException | None) -> None:
        """``set_result``/``set_exception``: the attempt ran; ``iter`` may judge it later, or never."""
        try:
            operation = self.operations.get(id(retry_state))
            if operation is None or not operation.phase & _ATTEMPT_OPEN:
                return
            operation.attempt_ended = operation.last_seen = perf_counter()
            token, operation.token = operation.token, None
            if isinstance(exc, GeneratorExit):
                # A generator or coroutine closed inside the attempt, perhaps by the garbage
                # collector: no span, context or lock work from here on. The operation ends as a
                # loop left early, from the deferred queue once tenacity releases its state.
                operation.move(_CLOSING)
                return
            operation.move(_RAN)
            if exc is None:
                operation.attempt_error = operation.attempt_error_class = None
            else:
                operation.attempt_error, operation.attempt_error_class = error_type(exc), type(exc)
            if token is not None:
                restore(token)
        except Exception as fault:
            report_fault("tenacity attempt telemetry", fault)

    def _end_attempt(
        self,
        operation: Operation,
        retry_state: tenacity.RetryCallState | None,
        error: BaseException | None,
        *,
        failed: bool,
        backoff: float | None = None,
        etype: str | None = None,
    ) -> None:
        if not operation.phase & _ATTEMPT_OPEN:
            return
        operation.move(_BACKING_OFF if backoff is not None else _JUDGED)
        ended = operation.attempt_ended if operation.attempt_ended is not None else perf_counter()
        if failed and etype is None:
            if error is None:
                etype = REJECTED_RESULT
            elif type(error) is operation.attempt_error_class:
                etype = operation.attempt_error  # named already when the attempt ended
            else:
                etype = error_type(error)
        operation.last_error = etype if failed else None
        outcome = _FAILURE if failed else _SUCCESS
        attributes = self.result_attributes.get(operation.name, outcome, operation.last_error)
        self.attempts.add(1, attributes)
        self.attempt_duration.record(
            ended - operation.attempt_started, attributes, exemplar_context(operation.attempt_span)
        )
        if backoff is not None:
            self.backoff.record(backoff, self.result_attributes.get(operation.name))
        span, operation.attempt_span = operation.attempt_span, None
        if span is None:
            return
        end = operation.wall(ended)
        if span.is_recording():
            span.set_attributes(attributes)
            if error is not None:
                record_exception(span, error, messages=self.exception_messages, timestamp=end)
            if failed:
                span.set_status(_ERROR)
            if backoff is not None:
                span.add_event(BACKOFF_EVENT, {RETRY_BACKOFF: backoff}, timestamp=end)
            self._call_hook(span, retry_state, operation, operation.attempt, outcome, error)
        span.end(end)

    # -- the end of an operation ----------------------------------------------------------------

    def _finish(
        self,
        operation: Operation,
        retry_state: tenacity.RetryCallState | None,
        etype: str | None,
        error: BaseException | None,
        *,
        failed: bool,
        ended: float | None = None,
    ) -> None:
        operation.move(_ENDED)
        if operation.ref is not None:
            self.operations.pop(operation.ref.key, None)
            operation.ref = None  # gone with its callback: nothing to do when tenacity frees the state
        if ended is None:
            ended = perf_counter()
        elapsed = ended - operation.started
        attempts = operation.attempt
        outcome = _OUTCOMES[failed, attempts > 1]
        attributes = self.result_attributes.get(operation.name, outcome, etype)
        self.calls.add(1, attributes)
        self.call_duration.record(elapsed, attributes, operation.parent)  # the operation span's context
        self.call_attempts.record(attempts, self.result_attributes.get(operation.name, outcome))
        span = operation.span
        if span is None:
            return
        if span.is_recording():
            span.set_attributes(attributes)
            span.set_attribute(RETRY_ATTEMPTS, attempts)
            if failed:
                span.set_status(_ERROR)
            self._call_hook(span, retry_state, operation, None, outcome, error)
        span.end(operation.wall(ended))

    def _released(self, ref: StateRef) -> None:
        """Weak reference callback, maybe inside the garbage collector: only queue work."""
        operation = self.operations.pop(ref.key, None)
        if operation is not None:
            operation.ref = None  # its key may name a new state from now on
            defer(partial(self._abandoned, operation))

    def _abandoned(self, operation: Operation) -> None:
        """A loop left with break/return (or closed) before ``iter`` judged its last attempt.

        The application chose to stop: the open attempt succeeded unless its body raised; an
        operation left during a backoff failed with the error that caused it. It ends when
        tenacity last reported progress.
        """
        if operation.phase & _ATTEMPT_OPEN:
            if operation.attempt_ended is None:  # left before the attempt's body ran
                operation.attempt_ended = operation.last_seen
            error = operation.attempt_error
            try:
                self._end_attempt(operation, None, None, failed=error is not None, etype=error)
            except Exception as fault:  # the operation's own metrics are still recorded
                report_fault("tenacity attempt telemetry", fault)
        error = operation.last_error
        self._finish(operation, None, error, None, failed=error is not None, ended=operation.last_seen)

    # -- helpers --------------------------------------------------------------------------------

    def _call_hook(
        self,
        span: Span,
        retry_state: tenacity.RetryCallState | None,
        operation: Operation,
        attempt: int | None,
        outcome: str,
        error: BaseException | None,
    ) -> None:
        self.call_hook(
            span,
            lambda: RetryCallInfo(retry_state, operation.name, attempt, operation.attempt, outcome, error),
        )

    # -- the attempt span as the current span in ``with attempt:`` -------------------------------

    def enter_attempt(self, manager: Any, caller: FrameType) -> None:
        """``with attempt:`` (``caller`` entered it): make the attempt span current in the block."""
        try:
            operation = self.find(manager.retry_state)
            if operation is None or operation.phase is _CLOSING:
                return
            current = operation.current_span()
            if current is None or _in_generator(caller):
                return
            token = make_current(current)
            _entered.set((manager, token, _entered.get()))
        except Exception as fault:
            report_fault("tenacity attempt context", fault)


def leave_attempt(manager: Any, exc_type: type[BaseException] | None) -> None:
    """Undo :meth:`RetryTelemetry.enter_attempt` for ``manager``, in the context that did it."""
    entry = _entered.get()
    if entry is None or entry[0] is not manager:
        return
    if exc_type is not None and issubclass(exc_type, GeneratorExit):
        return  # a coroutine closed, perhaps by the garbage collector: its context goes with it
    _entered.set(entry[2])
    restore(entry[1])
