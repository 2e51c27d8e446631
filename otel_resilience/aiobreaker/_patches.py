"""aiobreaker's patch points: small closures over one :class:`AioBreakerTelemetry`, on aiobreaker's classes.

A call is one entry into a state's ``call`` or ``call_async`` (``CircuitBreakerBaseState`` and the
open state's overrides), whichever form the user chose (``breaker.call``, ``call_async``, the
decorator). Not ``CircuitBreaker.call_async``: once ``timeout_duration`` has passed, the open state
moves the breaker to half-open and calls ``breaker.call_async`` again. That nested entry, for the
same breaker in the same context, is the same call: it only says the call runs half-open.

- ``CircuitBreakerBaseState.call`` / ``call_async``, ``CircuitOpenState.call`` / ``call_async``: one
  call (span, duration, outcome); a guarded generator is followed to its end;
- ``CircuitBreaker.is_system_error``: aiobreaker's verdict on an exception (failure or ignored);
- ``CircuitBreaker._create_new_state``: every transition (``notify=True``);
- ``CircuitBreaker.__init__``: a new breaker and the code that created it.

Until something can record, only the call entries (which pass straight through until then) and
``__init__`` are patched; ``is_system_error`` and ``_create_new_state`` are late patches.
"""

from __future__ import annotations

from types import GeneratorType
from typing import TYPE_CHECKING, Any, Callable

from aiobreaker.circuitbreaker import CircuitBreaker
from aiobreaker.state import CircuitBreakerBaseState, CircuitBreakerError, CircuitOpenState
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from otel_resilience._kit.breakers import OPEN, notified_transitions, run_trial, run_trial_async
from otel_resilience._kit.deferred import pending, run_deferred
from otel_resilience._kit.diagnostics import register_rejection_error
from otel_resilience._kit.faults import report_fault
from otel_resilience._kit.gate import gated
from otel_resilience._kit.instances import registering
from otel_resilience._kit.patching import PatchPlan, PatchTarget, Wrapper, after_call
from otel_resilience._kit.recording import make_current, restore, run_active
from otel_resilience._kit.verdicts import judging
from otel_resilience.aiobreaker._telemetry import STATES, ActiveCall, AioBreakerTelemetry, active_call

if TYPE_CHECKING:
    from otel_resilience._kit.settings import Settings
    from otel_resilience.aiobreaker._info import AioBreakerCallInfo


def _start(telemetry: AioBreakerTelemetry, state: Any) -> ActiveCall | None:
    """A new call record, or None when this call is not recorded."""
    if pending:
        run_deferred()
    if not is_instrumentation_enabled():
        return None
    try:
        return telemetry.start(state._breaker, state.state)
    except Exception as fault:
        report_fault("aiobreaker call telemetry", fault)
        return None


def _trial_of(state: Any) -> ActiveCall | None:
    """The call this entry re-enters, if any: the open state's, its breaker just half-opened.

    Only a call that is still open is re-entered: a call of the same breaker made by the function
    (or by a task it started) while it runs is a call of its own. The call re-entered takes the
    state it runs in now (half-open), which its record reports.
    """
    outer = active_call.get()
    if outer is None or outer.breaker is not state._breaker or outer.state != OPEN:
        return None
    outer.state = STATES[state.state]
    return outer


def _call_wrapper(telemetry: AioBreakerTelemetry) -> Wrapper:
    def call(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        outer = _trial_of(instance)
        if outer is not None:
            return run_trial(telemetry, outer, wrapped, args, kwargs)
        record = _start(telemetry, instance)
        if record is None:
            return wrapped(*args, **kwargs)
        result = run_active(active_call, record, record.span, telemetry.finish, wrapped, args, kwargs)
        if type(result) is GeneratorType:
            return telemetry.follow(result, record)
        telemetry.finish(record, None)
        return result

    return gated(telemetry.gate, call)


def _call_async_wrapper(telemetry: AioBreakerTelemetry) -> Wrapper:
    def call_async(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        return _recorded_call_async(telemetry, wrapped, instance, args, kwargs)

    return gated(telemetry.gate, call_async)


async def _recorded_call_async(
    telemetry: AioBreakerTelemetry,
    wrapped: Callable[..., Any],
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    # In the task that awaits the call: the nested entry of the open state sees this record.
    outer = _trial_of(instance)
    if outer is not None:
        return await run_trial_async(telemetry, outer, wrapped, args, kwargs)
    record = _start(telemetry, instance)
    if record is None:
        return await wrapped(*args, **kwargs)
    token = active_call.set(record)
    span_token = None if record.span is None else make_current(record.span)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        telemetry.finish(record, exc)
        # This frame stays in the exception's traceback, a cycle only the garbage collector frees:
        # it keeps nothing of ours alive (failures come in storms; fewer collections).
        del record, wrapped, args, kwargs
        raise
    finally:
        if span_token is not None:
            restore(span_token)
        active_call.reset(token)
        del token, span_token
    telemetry.finish(record, None)
    return result


def instrumentation(
    settings: Settings[AioBreakerCallInfo], scope: str, on_open: Callable[[], None]
) -> tuple[AioBreakerTelemetry, PatchPlan]:
    """The telemetry of one ``instrument()`` and what it patches."""
    telemetry = AioBreakerTelemetry(settings, scope, on_open=on_open)
    register_rejection_error(CircuitBreakerError)
    call, call_async = _call_wrapper(telemetry), _call_async_wrapper(telemetry)
    eager: list[PatchTarget] = [
        (CircuitBreaker, "__init__", after_call(registering(telemetry.breakers, "aiobreaker"))),
        (CircuitBreakerBaseState, "call", call),
        (CircuitBreakerBaseState, "call_async", call_async),
        (CircuitOpenState, "call", call),
        (CircuitOpenState, "call_async", call_async),
    ]
    late: list[PatchTarget] = [
        (CircuitBreaker, "is_system_error", after_call(judging(telemetry.verdicts, "aiobreaker"))),
        (
            CircuitBreaker,
            "_create_new_state",
            after_call(notified_transitions(telemetry.gate, telemetry.changed)),
        ),
    ]
    return telemetry, PatchPlan(eager, late)
