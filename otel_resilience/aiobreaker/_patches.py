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

from otel_resilience._kit.deferred import pending, run_deferred
from otel_resilience._kit.diagnostics import register_rejection_error
from otel_resilience._kit.faults import contain, report_fault
from otel_resilience._kit.gate import gated
from otel_resilience._kit.patching import Observer, PatchPlan, PatchTarget, Wrapper, after_call
from otel_resilience._kit.recording import make_current, restore
from otel_resilience.aiobreaker._telemetry import STATES, ActiveCall, AioBreakerTelemetry, active_call

if TYPE_CHECKING:
    from otel_resilience._kit.settings import Settings
    from otel_resilience.aiobreaker._info import AioBreakerCallInfo


def _start(telemetry: AioBreakerTelemetry, state: Any) -> ActiveCall | None:
    """A new call record, or None when this entry is not a call of its own, or not recorded."""
    if pending:
        run_deferred()
    breaker = state._breaker
    outer = active_call.get()
    if outer is not None and outer.breaker is breaker:
        outer.state = STATES[state.state]  # the open state re-entering half-open: the same call
        return None
    if not is_instrumentation_enabled():
        return None
    try:
        return telemetry.start(breaker, state.state)
    except Exception as fault:
        report_fault("aiobreaker call telemetry", fault)
        return None


def _call_wrapper(telemetry: AioBreakerTelemetry) -> Wrapper:
    def call(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        record = _start(telemetry, instance)
        if record is None:
            return wrapped(*args, **kwargs)
        token = active_call.set(record)
        span_token = None if record.span is None else make_current(record.span)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            telemetry.finish(record, exc)
            raise
        finally:
            if span_token is not None:
                restore(span_token)
            active_call.reset(token)
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
    record = _start(telemetry, instance)
    if record is None:
        return await wrapped(*args, **kwargs)
    token = active_call.set(record)
    span_token = None if record.span is None else make_current(record.span)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        telemetry.finish(record, exc)
        raise
    finally:
        if span_token is not None:
            restore(span_token)
        active_call.reset(token)
    telemetry.finish(record, None)
    return result


def _verdict_observer(telemetry: AioBreakerTelemetry) -> Observer:
    verdicts = telemetry.verdicts

    def is_system_error(breaker: Any, args: tuple[Any, ...], kwargs: dict[str, Any], counted: Any) -> None:
        try:  # inline, not `contain`: once per failed call
            verdicts.put(args[0] if args else kwargs["exception"], bool(counted))
        except Exception as fault:
            report_fault("aiobreaker failure classification", fault)

    return is_system_error


def _transition_observer(telemetry: AioBreakerTelemetry) -> Observer:
    def create_new_state(breaker: Any, args: tuple[Any, ...], kwargs: dict[str, Any], new_state: Any) -> None:
        notify = kwargs.get("notify", args[2] if len(args) > 2 else False)
        if notify and is_instrumentation_enabled():
            previous = kwargs.get("prev_state", args[1] if len(args) > 1 else None)
            telemetry.changed(breaker, previous, new_state)

    return create_new_state


def _registration_observer(telemetry: AioBreakerTelemetry) -> Observer:
    @contain("aiobreaker breaker registration")
    def init(breaker: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        telemetry.breakers.register(breaker)

    return init


def instrumentation(
    settings: Settings[AioBreakerCallInfo], scope: str, on_open: Callable[[], None]
) -> tuple[AioBreakerTelemetry, PatchPlan]:
    """The telemetry of one ``instrument()`` and what it patches."""
    telemetry = AioBreakerTelemetry(settings, scope, on_open=on_open)
    register_rejection_error(CircuitBreakerError)
    call, call_async = _call_wrapper(telemetry), _call_async_wrapper(telemetry)
    eager: list[PatchTarget] = [
        (CircuitBreaker, "__init__", after_call(_registration_observer(telemetry))),
        (CircuitBreakerBaseState, "call", call),
        (CircuitBreakerBaseState, "call_async", call_async),
        (CircuitOpenState, "call", call),
        (CircuitOpenState, "call_async", call_async),
    ]
    late: list[PatchTarget] = [
        (CircuitBreaker, "is_system_error", after_call(_verdict_observer(telemetry))),
        (CircuitBreaker, "_create_new_state", after_call(_transition_observer(telemetry))),
    ]
    return telemetry, PatchPlan(eager, late)
