"""pybreaker's patch points: small closures over one :class:`BreakerTelemetry`, on pybreaker's classes.

Class-level wraps cover breakers created before ``instrument()`` and decorated functions, which
look ``breaker.call`` up at call time. Patch points:

- ``CircuitBreaker.call`` / ``call_async``: one user call (span, duration, outcome);
- ``CircuitBreakerState.before_call``: the function is about to run, in this state (the open state
  overrides ``before_call``, so rejected calls never get here). An observer of ``before_call``, not
  a wrapper of the state's ``call``: it has returned before the function runs, so it is not one
  more frame in the traceback of every failure (see ``call``);
- ``CircuitBreaker.is_system_error``: pybreaker's verdict on an exception (failure or ignored);
- ``CircuitBreaker._create_new_state``: every transition (``notify=True``);
- ``CircuitBreaker.__init__``: a new breaker and the code that created it;
- ``CircuitRedisStorage.increment_counter`` / ``reset_counter``: the consecutive failures of a
  shared breaker, kept here so that metric collection never waits on Redis.

Until something can record (no SDK configured), ``CircuitBreakerState.before_call`` and
``is_system_error`` stay unpatched: only recorded calls need them, and every call would pay their
wrapt layer. They are late patches, installed when the SDK gate first opens.
"""

from __future__ import annotations

from types import GeneratorType
from typing import TYPE_CHECKING, Any, Callable

import pybreaker
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from otel_resilience._kit.awaitables import is_awaitable
from otel_resilience._kit.breakers import SUCCESS, notified_transitions, run_trial
from otel_resilience._kit.deferred import pending, run_deferred
from otel_resilience._kit.diagnostics import register_rejection_error
from otel_resilience._kit.faults import contain, report_fault
from otel_resilience._kit.gate import gated
from otel_resilience._kit.instances import registering
from otel_resilience._kit.patching import Observer, PatchPlan, PatchTarget, Wrapper, after_call
from otel_resilience._kit.recording import make_current, restore, run_active
from otel_resilience._kit.verdicts import judging
from otel_resilience.pybreaker._telemetry import STATES, ActiveCall, BreakerTelemetry, active_call

if TYPE_CHECKING:
    from otel_resilience._kit.settings import Settings
    from otel_resilience.pybreaker._info import BreakerCallInfo


def _start(telemetry: BreakerTelemetry, breaker: pybreaker.CircuitBreaker) -> ActiveCall | None:
    """A new call record, or None when this call is not to be recorded."""
    if pending:
        run_deferred()
    if not is_instrumentation_enabled():
        return None
    try:
        return telemetry.start(breaker)
    except Exception as fault:
        report_fault("pybreaker call telemetry", fault)
        return None


def _call_wrapper(telemetry: BreakerTelemetry) -> Wrapper:
    gate, finish = telemetry.gate, telemetry.finish

    def call(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # The SDK gate and `run_active` inline, in this one frame: a failure's traceback keeps each
        # frame it passed through, and what the frame holds, until the garbage collector frees the
        # cycle (exception, traceback, frames). Failures come in storms: fewer and emptier frames
        # mean fewer collections.
        if not (gate.open or gate()):
            return wrapped(*args, **kwargs)
        outer = active_call.get()
        if outer is not None and outer.breaker is instance and not outer.ran:
            return run_trial(telemetry, outer, wrapped, args, kwargs)
        record = _start(telemetry, instance)
        if record is None:
            return wrapped(*args, **kwargs)
        token = active_call.set(record)
        span_token = None if record.span is None else make_current(record.span)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            if record.token is not None:  # made current when the function began (`before_call`)
                restore(record.token)
                record.token = None
            finish(record, exc)
            # This frame is in the failure's traceback: it keeps neither the call record nor what
            # wrapt made for this call (the bound method, the arguments' tuple) alive.
            record = None
            del outer, wrapped, args, kwargs
            raise
        finally:
            if record is not None and record.token is not None:
                restore(record.token)
                record.token = None
            if span_token is not None:
                restore(span_token)
            active_call.reset(token)
            del token, span_token
        if record.ran:
            if type(result) is GeneratorType:
                return telemetry.follow(result, record)
            if is_awaitable(result):
                return telemetry.follow_awaitable(result, record, args[0] if args else kwargs.get("func"))
        telemetry.record(record, SUCCESS, None)
        return result

    return call


def _call_async_wrapper(telemetry: BreakerTelemetry) -> Wrapper:
    guarded = contain("pybreaker call_async telemetry")

    def call_async(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        record = _start(telemetry, instance)
        if record is None:
            return wrapped(*args, **kwargs)
        span = telemetry.begin(record)
        record.context_pending = False
        future = run_active(active_call, record, span, telemetry.finish, wrapped, args, kwargs)
        with guarded:
            future.add_done_callback(telemetry.finish_future(record))
        return future

    return gated(telemetry.gate, call_async)


def _function_runs_observer(telemetry: BreakerTelemetry) -> Observer:
    def before_call(
        state: pybreaker.CircuitBreakerState, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any
    ) -> None:
        """The active call's function runs next, in ``state`` (closed or half-open).

        A call that began with the breaker open, and runs because the shared state changed since
        (another process closed or half-opened it), runs in its span from here: the ``call``
        wrapper restores the context.
        """
        try:  # inline, not `contain`: once per call
            record = active_call.get()
            if record is not None and record.breaker is state._breaker:
                record.ran = True
                record.state = STATES.get(state.name, state.name)
                span = telemetry.span_to_enter(record)
                if span is not None:
                    record.token = make_current(span)
        except Exception as fault:
            report_fault("pybreaker call telemetry", fault)

    return before_call


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
            after_call(notified_transitions(telemetry.gate, telemetry.changed)),
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
        (pybreaker.CircuitBreakerState, "before_call", after_call(_function_runs_observer(telemetry))),
        (pybreaker.CircuitBreaker, "is_system_error", after_call(judging(telemetry.verdicts, "pybreaker"))),
    ]
    return telemetry, PatchPlan(eager, late)
