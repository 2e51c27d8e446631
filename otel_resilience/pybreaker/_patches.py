"""pybreaker's patch points: small closures over one :class:`BreakerTelemetry`, on pybreaker's classes.

Class-level wraps cover breakers created before ``instrument()`` and decorated functions, which
look ``breaker.call`` up at call time. Patch points:

- ``CircuitBreaker.call`` / ``call_async``: one user call (span, duration, outcome);
- ``CircuitBreakerState.call``: the function is about to run, in this state (the open state
  overrides ``call``, so rejected calls never get here);
- ``CircuitBreaker.is_system_error``: pybreaker's verdict on an exception (failure or ignored);
- ``CircuitBreaker._create_new_state``: every transition (``notify=True``);
- ``CircuitBreaker.__init__``: a new breaker and the code that created it;
- ``CircuitRedisStorage.increment_counter`` / ``reset_counter``: the consecutive failures of a
  shared breaker, kept here so that metric collection never waits on Redis.

Until something can record (no SDK configured), ``CircuitBreakerState.call`` and
``is_system_error`` stay unpatched: only recorded calls need them, and every call would pay their
wrapt layer. They are late patches, installed when the SDK gate first opens.
"""

from __future__ import annotations

from time import perf_counter
from types import GeneratorType
from typing import TYPE_CHECKING, Any, Callable

import pybreaker
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from otel_resilience._kit.awaitables import is_awaitable
from otel_resilience._kit.breakers import notified_transitions
from otel_resilience._kit.deferred import pending, run_deferred
from otel_resilience._kit.diagnostics import register_rejection_error
from otel_resilience._kit.faults import contain, report_fault
from otel_resilience._kit.gate import gated
from otel_resilience._kit.instances import registering
from otel_resilience._kit.patching import Observer, PatchPlan, PatchTarget, Wrapper, after_call
from otel_resilience._kit.recording import run_active
from otel_resilience._kit.verdicts import judging
from otel_resilience.contract import BreakerOutcome
from otel_resilience.pybreaker._telemetry import STATES, ActiveCall, BreakerTelemetry, active_call

if TYPE_CHECKING:
    from otel_resilience._kit.settings import Settings
    from otel_resilience.pybreaker._info import BreakerCallInfo

_SUCCESS = BreakerOutcome.SUCCESS.value


def _start(telemetry: BreakerTelemetry, breaker: pybreaker.CircuitBreaker) -> ActiveCall | None:
    """A new call record, or None when this call is not to be recorded."""
    if pending:
        run_deferred()
    outer = active_call.get()
    if outer is not None and outer.breaker is breaker and not outer.ran:
        return None  # pybreaker re-entering `call` on its way from open to half-open
    if not is_instrumentation_enabled():
        return None
    try:
        return telemetry.start(breaker)
    except Exception as fault:
        report_fault("pybreaker call telemetry", fault)
        return None


def _call_wrapper(telemetry: BreakerTelemetry) -> Wrapper:
    def call(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        record = _start(telemetry, instance)
        if record is None:
            return wrapped(*args, **kwargs)
        result = run_active(active_call, record, record.span, telemetry.finish, wrapped, args, kwargs)
        if record.ran:
            if type(result) is GeneratorType:
                return telemetry.follow(result, record)
            if is_awaitable(result):
                return telemetry.follow_awaitable(result, record, args[0] if args else kwargs.get("func"))
        telemetry.record(record, _SUCCESS, None, perf_counter() - record.started)
        return result

    return gated(telemetry.gate, call)


def _call_async_wrapper(telemetry: BreakerTelemetry) -> Wrapper:
    guarded = contain("pybreaker call_async telemetry")

    def call_async(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        record = _start(telemetry, instance)
        if record is None:
            return wrapped(*args, **kwargs)
        future = run_active(active_call, record, record.span, telemetry.finish, wrapped, args, kwargs)
        with guarded:
            future.add_done_callback(telemetry.finish_future(record))
        return future

    return gated(telemetry.gate, call_async)


def _state_call(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    record = active_call.get()
    if record is not None and record.breaker is instance._breaker:
        record.ran = True
        record.state = STATES.get(instance.name, instance.name)
    return wrapped(*args, **kwargs)


def _shared_counter_observer(telemetry: BreakerTelemetry, *, failed: bool) -> Observer:
    @contain("pybreaker shared failure count")
    def counter_changed(storage: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        telemetry.shared_failure_counted(storage, failed=failed)

    return counter_changed


def instrumentation(
    settings: Settings[BreakerCallInfo], scope: str, on_open: Callable[[], None]
) -> tuple[BreakerTelemetry, PatchPlan]:
    """The telemetry of one ``instrument()`` and what it patches."""
    telemetry = BreakerTelemetry(settings, scope, on_open=on_open)
    register_rejection_error(pybreaker.CircuitBreakerError)
    eager: list[PatchTarget] = [
        (pybreaker.CircuitBreaker, "__init__", after_call(registering(telemetry.breakers, "pybreaker"))),
        (pybreaker.CircuitBreaker, "call", _call_wrapper(telemetry)),
        (
            pybreaker.CircuitBreaker,
            "_create_new_state",
            after_call(notified_transitions(telemetry.gate, telemetry.transition)),
        ),
        (
            pybreaker.CircuitRedisStorage,
            "increment_counter",
            after_call(_shared_counter_observer(telemetry, failed=True)),
        ),
        (
            pybreaker.CircuitRedisStorage,
            "reset_counter",
            after_call(_shared_counter_observer(telemetry, failed=False)),
        ),
    ]
    if pybreaker.HAS_TORNADO_SUPPORT:
        eager.append((pybreaker.CircuitBreaker, "call_async", _call_async_wrapper(telemetry)))
    late: list[PatchTarget] = [
        (pybreaker.CircuitBreakerState, "call", _state_call),
        (pybreaker.CircuitBreaker, "is_system_error", after_call(judging(telemetry.verdicts, "pybreaker"))),
    ]
    return telemetry, PatchPlan(eager, late)
