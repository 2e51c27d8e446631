"""circuitbreaker's patch points: small closures over one :class:`CircuitBreakerTelemetry`.

Every call form (``call``, ``call_generator``, ``call_async``, ``call_async_generator`` and the
user's own ``with breaker:``) runs the guarded code inside ``with self:``, so one call is one
``__enter__``/``__exit__`` pair, matched by the frame that holds the ``with`` statement. Patch points,
all on the class, so breakers and decorated functions made before ``instrument()`` are covered:

- ``CircuitBreaker.__enter__`` / ``__exit__``: one call (span, duration, outcome);
- ``CircuitBreaker._CircuitBreaker__call_failed``: the library counted the call's exception as a
  failure (``is_failure`` is a per-instance predicate that may have side effects: it is never
  asked again); with ``reset``, the transitions these two make;
- ``CircuitBreaker.state`` (property): the open -> half-open step, which exists only when read;
- ``CircuitBreaker.opened`` (property), read by the decorator: true there means a rejection;
- ``CircuitBreaker.__init__``: a new breaker and the code that created it.

Only ``__enter__`` and ``__init__`` are patched before something can record (``__enter__`` passes
straight through until then); the others are late patches, installed when the SDK gate opens.
"""

from __future__ import annotations

import sys
from inspect import CO_ASYNC_GENERATOR, CO_GENERATOR
from types import CodeType
from typing import TYPE_CHECKING, Any, Callable

import circuitbreaker
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from otel_resilience._kit.breakers import CLOSED, FAILURE, IGNORED, OPEN, SUCCESS
from otel_resilience._kit.deferred import pending, run_deferred
from otel_resilience._kit.diagnostics import register_rejection_error
from otel_resilience._kit.faults import contain, report_fault
from otel_resilience._kit.gate import gated
from otel_resilience._kit.instances import registering
from otel_resilience._kit.patching import Observer, PatchPlan, PatchTarget, Wrapper, after_call
from otel_resilience.circuitbreaker._telemetry import CircuitBreakerTelemetry, exiting, observed_state

if TYPE_CHECKING:
    from types import FrameType

    from otel_resilience._kit.settings import Settings
    from otel_resilience.circuitbreaker._info import BreakerCallInfo

_Breaker = circuitbreaker.CircuitBreaker
# The decorator's closures: `if self.opened:` there is the only place the library rejects a call.
_REJECTING_CODES = frozenset(
    const
    for method in (
        circuitbreaker.CircuitBreaker._decorate_sync,
        circuitbreaker.CircuitBreaker._decorate_async,
    )
    for const in method.__code__.co_consts
    if isinstance(const, CodeType)
)
# A `with` in a generator spans its yields, where the consumer's code runs in the same context: the
# call's span is current only in frames that run to the end of the block without giving way.
_SUSPENDING = CO_GENERATOR | CO_ASYNC_GENERATOR
# Frames between a `with` and the breaker: our wrappers (wrapt's are C code), and contextlib's, whose
# ExitStack enters and exits for the frame that holds the stack.
_PASSED_OVER = (
    "otel_resilience._kit.gate",
    "otel_resilience._kit.patching",
    "otel_resilience.circuitbreaker._patches",
    "contextlib",
)


def _caller(frame: FrameType | None) -> FrameType | None:
    """The first frame from ``frame`` up that holds the `with` (or the ExitStack) of a breaker."""
    while frame is not None and frame.f_globals.get("__name__") in _PASSED_OVER:
        frame = frame.f_back
    return frame


def _enter_wrapper(telemetry: CircuitBreakerTelemetry) -> Wrapper:
    def enter(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = wrapped(*args, **kwargs)
        if pending:
            run_deferred()
        if is_instrumentation_enabled():
            try:
                frame = _caller(sys._getframe(1))
                if frame is not None:
                    telemetry.start(instance, frame, not frame.f_code.co_flags & _SUSPENDING)
            except Exception as fault:
                report_fault("circuitbreaker call telemetry", fault)
        return result

    return gated(telemetry.gate, enter)


def _exit_wrapper(telemetry: CircuitBreakerTelemetry) -> Wrapper:
    active = telemetry.active

    def exit_(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        frame = _caller(sys._getframe(1))
        record = None if frame is None else active.pop((id(instance), id(frame)), None)
        if record is None:
            return wrapped(*args, **kwargs)
        token = exiting.set(record)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:  # the failure predicate raised: the call failed with that
            exiting.reset(token)
            telemetry.finish(record, FAILURE, exc)
            raise
        exiting.reset(token)
        exc_type = args[0] if args else kwargs.get("exc_type")
        error = args[1] if len(args) > 1 else kwargs.get("exc_value")
        if exc_type is None:
            telemetry.finish(record, SUCCESS, None)
        else:
            telemetry.finish(record, FAILURE if record.counted else IGNORED, error)
        return result

    return exit_


def _state_change_wrapper(telemetry: CircuitBreakerTelemetry, *, failed: bool) -> Wrapper:
    """``reset`` and the failure count: report the transition they make, as the library made it."""
    guarded = contain("circuitbreaker transition telemetry")

    def change(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        before = None
        with guarded:
            if failed:
                record = exiting.get()
                if record is not None and record.breaker is instance:
                    record.counted = True
            if is_instrumentation_enabled():
                telemetry.notice_half_open(instance)
                before = (observed_state(instance), instance._opened)
        result = wrapped(*args, **kwargs)
        if before is not None:
            with guarded:
                state = instance._state
                previous, opened = before
                # Opening sets a new open period (also from open: open -> open, as pybreaker's open()
                # reports); a half-open breaker whose `_state` still says open has not moved.
                if (state == OPEN and instance._opened != opened) or (state == CLOSED != previous):
                    telemetry.transition(telemetry.name_of(instance), previous, state)
        return result

    return change


def _state_observer(telemetry: CircuitBreakerTelemetry) -> Observer:
    def state(breaker: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        if result == circuitbreaker.STATE_HALF_OPEN and is_instrumentation_enabled():
            telemetry.notice_half_open(breaker)

    return state


def _opened_observer(telemetry: CircuitBreakerTelemetry) -> Observer:
    guarded = contain("circuitbreaker rejection telemetry")

    def opened(breaker: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        if result:
            with guarded:
                frame = _caller(sys._getframe(1))
                if frame is not None and frame.f_code in _REJECTING_CODES:
                    telemetry.reject(breaker)

    return opened


def instrumentation(
    settings: Settings[BreakerCallInfo], scope: str, on_open: Callable[[], None]
) -> tuple[CircuitBreakerTelemetry, PatchPlan]:
    """The telemetry of one ``instrument()`` and what it patches."""
    telemetry = CircuitBreakerTelemetry(settings, scope, on_open=on_open)
    register_rejection_error(circuitbreaker.CircuitBreakerError)
    breaker = _Breaker
    eager: list[PatchTarget] = [
        (breaker, "__init__", after_call(registering(telemetry.breakers, "circuitbreaker"))),
        (breaker, "__enter__", _enter_wrapper(telemetry)),
    ]
    late: list[PatchTarget] = [
        (breaker, "__exit__", _exit_wrapper(telemetry)),
        (breaker, "_CircuitBreaker__call_failed", _state_change_wrapper(telemetry, failed=True)),
        (breaker, "reset", _state_change_wrapper(telemetry, failed=False)),
        (breaker, "state", after_call(_state_observer(telemetry))),
        (breaker, "opened", after_call(_opened_observer(telemetry))),
    ]
    return telemetry, PatchPlan(eager, late)
