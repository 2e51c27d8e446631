"""The wrappers: small closures over one :class:`BreakerTelemetry`, installed on pybreaker's classes.

Class-level wraps cover breakers created before ``instrument()`` and decorated functions, which
look ``breaker.call`` up at call time. Hook points:

- ``CircuitBreaker.call`` / ``call_async``: one user call (span, duration, outcome);
- ``CircuitBreakerState.call``: the function is about to run, in this state (the open state
  overrides ``call``, so rejected calls never get here);
- ``CircuitBreaker.is_system_error``: pybreaker's verdict on an exception (failure or ignored);
- ``CircuitBreaker._create_new_state``: every transition (``notify=True``);
- ``CircuitBreaker.__init__``: a new breaker and the code that created it;
- ``CircuitRedisStorage.increment_counter`` / ``reset_counter``: the consecutive failures of a
  shared breaker, kept here so that metric collection never waits on Redis.

Until something can record (no SDK configured), ``CircuitBreakerState.call`` and
``is_system_error`` stay unwrapped: only recorded calls need them, and every call would pay their
wrapt layer. ``call`` installs them before the first call it records.
"""

from __future__ import annotations

from time import perf_counter
from types import GeneratorType
from typing import Any, Callable

import pybreaker
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from otel_resilience._deferred import _pending, run_deferred
from otel_resilience._faults import report_fault
from otel_resilience._hooks import Hooks, LateHooks, Targets, Wrapper
from otel_resilience._settings import resolve_settings
from otel_resilience.contract import BreakerOutcome
from otel_resilience.pybreaker._telemetry import (
    STATES,
    ActiveCall,
    BreakerTelemetry,
    active_call,
    attach,
    current,
    detach,
)

SUCCESS = BreakerOutcome.SUCCESS.value

_hooks = Hooks()


def _start(
    telemetry: BreakerTelemetry, recorded_call_hooks: LateHooks, breaker: pybreaker.CircuitBreaker
) -> ActiveCall | None:
    """A new call record, or None when this call is not to be recorded (``telemetry.live`` said yes)."""
    if not recorded_call_hooks.installed:
        recorded_call_hooks.install()
    if _pending:
        run_deferred()
    current = active_call.get()
    if current is not None and current.breaker is breaker and not current.ran:
        return None  # pybreaker re-entering `call` on its way from open to half-open
    if not is_instrumentation_enabled():
        return None
    try:
        return telemetry.start(breaker)
    except Exception as fault:
        report_fault("pybreaker call telemetry", fault)
        return None


def _run_active(
    telemetry: BreakerTelemetry,
    record: ActiveCall,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run pybreaker's call with ``record`` active and its span current; finish it if it raises."""
    token = active_call.set(record)
    span_token = attach(record.span)
    try:
        return wrapped(*args, **kwargs)
    except BaseException as exc:
        telemetry.finish(record, exc)
        raise
    finally:
        detach(span_token)
        active_call.reset(token)


def _call_wrapper(telemetry: BreakerTelemetry, recorded_call_hooks: LateHooks) -> Wrapper:
    live = telemetry.live

    def call(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not (live.live or live()):  # first and cheapest: without an SDK, nothing else runs
            return wrapped(*args, **kwargs)
        record = _start(telemetry, recorded_call_hooks, instance)
        if record is None:
            return wrapped(*args, **kwargs)
        result = _run_active(telemetry, record, wrapped, args, kwargs)
        if record.ran and type(result) is GeneratorType:
            return telemetry.follow(result, record)
        telemetry.record(record, SUCCESS, None, perf_counter() - record.started)
        return result

    return call


def _call_async_wrapper(telemetry: BreakerTelemetry, recorded_call_hooks: LateHooks) -> Wrapper:
    live = telemetry.live

    def call_async(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not (live.live or live()):
            return wrapped(*args, **kwargs)
        record = _start(telemetry, recorded_call_hooks, instance)
        if record is None:
            return wrapped(*args, **kwargs)
        future = _run_active(telemetry, record, wrapped, args, kwargs)
        try:
            future.add_done_callback(telemetry.finish_future(record))
        except Exception as fault:
            report_fault("pybreaker call_async telemetry", fault)
        return future

    return call_async


def _state_call(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    record = active_call.get()
    if record is not None and record.breaker is instance._breaker:
        record.ran = True
        record.state = STATES.get(instance.name, instance.name)
    return wrapped(*args, **kwargs)


def _verdict_wrapper(telemetry: BreakerTelemetry) -> Wrapper:
    def is_system_error(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        counted = wrapped(*args, **kwargs)
        try:
            telemetry.verdicts.put(args[0] if args else kwargs["exception"], bool(counted))
        except Exception as fault:
            report_fault("pybreaker failure classification", fault)
        return counted

    return is_system_error


def _transition_wrapper(telemetry: BreakerTelemetry) -> Wrapper:
    def create_new_state(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        new_state = wrapped(*args, **kwargs)
        notify = kwargs.get("notify", args[2] if len(args) > 2 else False)
        if notify and telemetry.live() and is_instrumentation_enabled():
            previous = kwargs.get("prev_state", args[1] if len(args) > 1 else None)
            telemetry.transition(instance, previous, new_state)
        return new_state

    return create_new_state


def _shared_counter_wrapper(telemetry: BreakerTelemetry, increment: bool) -> Wrapper:
    def counter_changed(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = wrapped(*args, **kwargs)
        try:
            telemetry.shared_failure_counted(instance, increment)
        except Exception as fault:
            report_fault("pybreaker shared failure count", fault)
        return result

    return counter_changed


def _init_wrapper(telemetry: BreakerTelemetry) -> Wrapper:
    def init(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = wrapped(*args, **kwargs)
        try:
            telemetry.register(instance)
        except Exception as fault:
            report_fault("pybreaker breaker registration", fault)
        return result

    return init


def instrument(kwargs: dict[str, Any]) -> None:
    telemetry = BreakerTelemetry(resolve_settings(kwargs))
    current[:] = [telemetry]
    recorded_call_hooks = _hooks.later(
        [
            (pybreaker.CircuitBreakerState, "call", _state_call),
            (pybreaker.CircuitBreaker, "is_system_error", _verdict_wrapper(telemetry)),
        ]
    )
    increment = _shared_counter_wrapper(telemetry, increment=True)
    reset = _shared_counter_wrapper(telemetry, increment=False)
    targets: Targets = [
        (pybreaker.CircuitBreaker, "__init__", _init_wrapper(telemetry)),
        (pybreaker.CircuitBreaker, "call", _call_wrapper(telemetry, recorded_call_hooks)),
        (pybreaker.CircuitBreaker, "_create_new_state", _transition_wrapper(telemetry)),
        (pybreaker.CircuitRedisStorage, "increment_counter", increment),
        (pybreaker.CircuitRedisStorage, "reset_counter", reset),
    ]
    if pybreaker.HAS_TORNADO_SUPPORT:
        call_async = _call_async_wrapper(telemetry, recorded_call_hooks)
        targets.append((pybreaker.CircuitBreaker, "call_async", call_async))
    _hooks.wrap(targets)
    if telemetry.live.look():  # an SDK set already, as under opentelemetry-instrument
        recorded_call_hooks.install()


def uninstrument() -> None:
    _hooks.unwrap_all()
    run_deferred()
    current.clear()
