"""What the backoff patches record: one object per ``instrument()``, closed over by the wrappers.

backoff builds each decorated function's retry loop once, at decoration time, as a closure over
the target, its handler lists and its wait generator. A decoration made while instrumented gets
a :class:`Policy`: the loop's target is a proxy that times each attempt, and the returned
function is a proxy that brackets the operation. In between, the loop calls backoff's
module-level ``_call_handlers``, looked up at run time, with ``wait=`` when it backs off: that
call says the attempt failed and how long backoff sleeps. The operation of the current context
is in a context variable, so that the loop's helper calls find it without anything stored on
backoff's objects.

=====================================  ==============================  ===============================
backoff event                          patch point -> method           what changes
=====================================  ==============================  ===============================
decorated function called              operation proxy -> ``begin``    operation span starts
target called                          target proxy -> ``attempt``     attempt span starts, current
target returned or raised              target proxy -> ``ran``         attempt's end and error kept
predicate judged the value             predicate -> ``judged``         value rejected or accepted
``_call_handlers(..., wait=s)``        ``_call_handlers`` -> ``wait``  attempt ends failed; backoff
decorated function returned or raised  operation proxy -> ``finish``   last attempt, operation end
=====================================  ==============================  ===============================

A function decorated before ``instrument()`` has none of these proxies: only its backoff sleeps
are seen (``_call_handlers`` with ``wait=``), and only they are recorded (see the user guide).
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from time import perf_counter, time_ns
from typing import TYPE_CHECKING, Any, Callable, SupportsIndex

from opentelemetry import context, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Status, StatusCode
from wrapt import FunctionWrapper

from otel_resilience._kit import diagnostics
from otel_resilience._kit.contract_metrics import RetryMetrics, end_attempt_span, retry_outcome
from otel_resilience._kit.diagnostics import Diagnostics
from otel_resilience._kit.exceptions import error_type, record_exception
from otel_resilience._kit.faults import logger, report_fault
from otel_resilience._kit.names import NameRegistry, function_name
from otel_resilience._kit.recording import Recorder, make_current, restore
from otel_resilience.backoff._info import BackoffCallInfo
from otel_resilience.contract import (
    REJECTED_RESULT,
    RETRY_ATTEMPT,
    RETRY_ATTEMPTS,
    RETRY_NAME,
    AttemptOutcome,
    Finding,
)

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span

    from otel_resilience._kit.settings import Settings

_ERROR = Status(StatusCode.ERROR)
_SUCCESS = AttemptOutcome.SUCCESS.value
_FAILURE = AttemptOutcome.FAILURE.value


class Policy:
    """One decoration made while instrumented: the target and what backoff was told about it."""

    __slots__ = ("name", "target", "unbounded")

    def __init__(self, target: Callable[..., Any], *, unbounded: bool) -> None:
        self.target = target
        self.name = function_name(target)
        self.unbounded = unbounded
        """Neither ``max_tries`` nor ``max_time``: backoff retries until the wait generator ends."""


class Operation:
    """One call of a decorated function, from its start to its return or exception."""

    __slots__ = (
        "args",
        "attempt",
        "attempt_ended",
        "attempt_error",
        "attempt_open",
        "attempt_span",
        "attempt_started",
        "kwargs",
        "last_error",
        "name",
        "parent",
        "policy",
        "rejected",
        "span",
        "started",
        "telemetry",
        "token",
        "wall_started",
    )

    def __init__(
        self,
        telemetry: BackoffTelemetry,
        policy: Policy,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.telemetry = telemetry
        """The telemetry that started it records all of it, even if uninstrumented meanwhile."""
        self.policy = policy
        self.name = name
        self.args = args
        self.kwargs = kwargs
        self.span: Span | None = None
        self.parent: Context | None = None
        self.started = self.attempt_started = self.attempt_ended = perf_counter()
        self.wall_started = time_ns()
        self.attempt = 0
        self.attempt_open = False
        self.attempt_span: Span | None = None
        self.attempt_error: BaseException | None = None
        self.rejected = False
        """The predicate (``on_predicate``) asked for another try with the attempt's value."""
        self.last_error: str | None = None
        """error.type of the last judged attempt, None if it succeeded."""
        self.token: object | None = None

    def wall(self, instant: float) -> int:
        """Span timestamp of a ``perf_counter()`` reading."""
        return self.wall_started + int((instant - self.started) * 1e9)


class FunctionProxy(FunctionWrapper[..., Any]):
    """A function's proxy that copies and pickles as the function does.

    Functions are copied as themselves, and pickled by reference (module and qualified name);
    wrapt's proxies refuse all three, which would break applications that copy or pickle objects
    holding a decorated function (``multiprocessing``, ``copy.deepcopy`` of a configuration).
    """

    def __copy__(self) -> FunctionProxy:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FunctionProxy:
        return self

    def __reduce_ex__(self, protocol: SupportsIndex) -> str:
        # A string means "the global of this name in the object's module", which pickle checks is
        # this very object: true of a decorated module-level function or method, as for a function.
        return str(self.__qualname__)


class TargetProxy(FunctionProxy):
    """What backoff's loop calls instead of the target, in decorations made while instrumented.

    It is ``details["target"]`` in the application's handlers: it has the target's name, module,
    docstring and attributes, and calls it, but it is not the target (``is`` tells them apart).
    """

    def __init__(self, policy: Policy, wrapper: Callable[..., Any]) -> None:
        super().__init__(policy.target, wrapper)
        self._self_policy = policy


current: ContextVar[Operation | None] = ContextVar("otel_resilience_backoff_operation", default=None)
"""The recorded operation whose retry loop runs in this context (the innermost one when stacked)."""


class BackoffTelemetry(Recorder[BackoffCallInfo]):
    """Tracer and instruments of one ``instrument()`` call."""

    def __init__(
        self, settings: Settings[BackoffCallInfo], scope: str, *, on_open: Callable[[], None]
    ) -> None:
        super().__init__(settings, scope, on_open=on_open)
        self.metrics = RetryMetrics(self.meter)
        self.names = NameRegistry("retry", settings.max_names, self.metrics.count_from_zero)
        self.diagnostics = Diagnostics(self.meter, RETRY_NAME)
        # Functions decorated before instrument() report backoffs only: no calls series from 0.
        self._blind_names = NameRegistry("retry", settings.max_names, lambda name: None)
        self._blind: set[str] = set()  # names of functions decorated before instrument(), logged once
        self._blind_lock = threading.Lock()

    def _report(self, name: str) -> str:
        return self.names.reported.get(name) or self.names.report(name)

    # -- operations -----------------------------------------------------------------------------

    def begin(self, policy: Policy, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Operation | None:
        """A decorated function was called; None to record nothing (suppressed, or a fault)."""
        try:
            if context.get_current() and not is_instrumentation_enabled():
                return None
            operation = Operation(self, policy, self._report(policy.name), args, kwargs)
            span = self.start_span(
                operation.name, {RETRY_NAME: operation.name}, start_time=operation.wall_started
            )
            if span is not None:
                operation.span = span
                operation.parent = trace.set_span_in_context(span)
            if policy.unbounded:
                self.diagnostics.found(
                    Finding.RETRY_UNBOUNDED, operation.name, "max_tries=None, max_time=None"
                )
            return operation
        except Exception as fault:
            report_fault("backoff operation telemetry", fault)
            return None

    def finish(self, operation: Operation, exc: BaseException | None) -> None:
        """The decorated function returned (``exc`` None) or raised ``exc``."""
        try:
            ended = perf_counter()
            if operation.attempt_open:
                attempt_error = operation.attempt_error
                self._end_attempt(operation, failed=attempt_error is not None or operation.rejected)
            failed = exc is not None or operation.last_error is not None
            if exc is None or exc is operation.attempt_error:
                etype = operation.last_error  # what made backoff give up, or the attempt's own error
            else:
                etype = error_type(exc)  # raised after the attempts: a handler, a cancellation
                if operation.span is not None and operation.span.is_recording():
                    record_exception(
                        operation.span, exc, messages=self.exception_messages, timestamp=operation.wall(ended)
                    )
            metrics = self.metrics
            outcome = retry_outcome(failed=failed, attempts=operation.attempt)
            attributes = metrics.attributes.get(operation.name, outcome, etype)
            metrics.calls.add(1, attributes)
            metrics.call_duration.record(ended - operation.started, attributes)
            metrics.call_attempts.record(operation.attempt, metrics.attributes.get(operation.name, outcome))
            span = operation.span
            if span is None:
                return
            if span.is_recording():
                span.set_attributes(attributes)
                span.set_attribute(RETRY_ATTEMPTS, operation.attempt)
                if failed:
                    span.set_status(_ERROR)
                self._call_hook(span, operation, None, outcome, exc)
            span.end(operation.wall(ended))
        except Exception as fault:
            report_fault("backoff operation telemetry", fault)

    # -- attempts -------------------------------------------------------------------------------

    def attempt(self, operation: Operation) -> None:
        """The loop calls the target: an attempt starts (its span current until it ends)."""
        try:
            if operation.attempt_open:  # the loop never re-enters the target before judging it
                self._end_attempt(operation, failed=operation.attempt_error is not None or operation.rejected)
            operation.attempt += 1
            operation.attempt_open = True
            operation.attempt_error = None
            operation.rejected = False
            operation.attempt_started = perf_counter()
            if operation.span is None:
                return
            span = self.start_span(
                f"{operation.name} attempt",
                {RETRY_NAME: operation.name, RETRY_ATTEMPT: operation.attempt},
                parent=operation.parent,
                start_time=operation.wall(operation.attempt_started),
            )
            operation.attempt_span = span
            if span is not None:
                operation.token = make_current(span)
        except Exception as fault:
            report_fault("backoff attempt telemetry", fault)

    def ran(self, operation: Operation, exc: BaseException | None) -> None:
        """The target returned or raised: the attempt's end, judged later."""
        try:
            operation.attempt_ended = perf_counter()
            operation.attempt_error = exc
            token, operation.token = operation.token, None
            if token is not None:
                restore(token)
        except Exception as fault:
            report_fault("backoff attempt telemetry", fault)

    def waits(self, target: Any, seconds: Any, details: dict[str, Any]) -> None:
        """``_call_handlers`` with ``wait=``: the attempt failed and backoff sleeps ``seconds``."""
        try:
            if not isinstance(target, TargetProxy):  # decorated before instrument()
                self._blind_backoff(target, seconds)
                return
            operation = current.get()
            if operation is None or operation.policy is not target._self_policy:
                return  # not recorded (suppressed, or started before the SDK was there)
            if not operation.attempt_open:
                return
            self._end_attempt(operation, failed=True, backoff=float(seconds))
            error = details.get("exception")
            if isinstance(error, diagnostics.rejection_errors):
                self.diagnostics.found(Finding.RETRY_ON_REJECTION, operation.name, error_type(error))
        except Exception as fault:
            report_fault("backoff attempt telemetry", fault)

    def _blind_backoff(self, target: Any, seconds: Any) -> None:
        """A backoff of a function decorated before ``instrument()``: only the sleep is known."""
        if context.get_current() and not is_instrumentation_enabled():
            return
        name = self._blind_names.report(function_name(target))
        self.metrics.backoff.record(float(seconds), self.metrics.attributes.get(name))
        if name in self._blind:
            return
        with self._blind_lock:
            if name in self._blind:
                return
            self._blind.add(name)
        logger.warning(
            "otel-resilience: %s was decorated with backoff before instrument(): only its backoff"
            " sleeps are recorded (instrument before importing it, or run under opentelemetry-instrument)",
            name,
        )

    def _end_attempt(self, operation: Operation, *, failed: bool, backoff: float | None = None) -> None:
        operation.attempt_open = False
        error = operation.attempt_error
        if failed:
            operation.last_error = REJECTED_RESULT if error is None else error_type(error)
        else:
            operation.last_error = None
        outcome = _FAILURE if failed else _SUCCESS
        metrics = self.metrics
        attributes = metrics.attributes.get(operation.name, outcome, operation.last_error)
        metrics.attempts.add(1, attributes)
        metrics.attempt_duration.record(operation.attempt_ended - operation.attempt_started, attributes)
        if backoff is not None:
            metrics.backoff.record(backoff, metrics.attributes.get(operation.name))
        span, operation.attempt_span = operation.attempt_span, None
        if span is None:
            return
        end_attempt_span(
            span,
            attributes,
            error=error,
            failed=failed,
            backoff=backoff,
            end=operation.wall(operation.attempt_ended),
            messages=self.exception_messages,
            hook=lambda span: self._call_hook(span, operation, operation.attempt, outcome, error),
        )

    def _call_hook(
        self, span: Span, operation: Operation, attempt: int | None, outcome: str, error: BaseException | None
    ) -> None:
        self.call_hook(
            span,
            lambda: BackoffCallInfo(
                operation.policy.target,
                operation.args,
                operation.kwargs,
                operation.name,
                attempt,
                operation.attempt,
                outcome,
                error,
            ),
        )
